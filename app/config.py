"""The one settings object; nothing else in the app reads the environment."""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

ONE_MIB = 1024 * 1024
DEFAULT_MAX_REPLY_CHARS = 400_000
# A comma list in the environment ("openai/a, anthropic/b"), not JSON.
ModelList = Annotated[list[str], NoDecode]
# The databases the app is built and tested for, with the drivers it installs (after
# ``normalise_database_url``); any other, such as mysql://, failed at start with a traceback
# about a driver module that is not installed.
SUPPORTED_DRIVERS = {"sqlite", "sqlite+pysqlite", "postgresql+psycopg"}


class Settings(BaseSettings):
    """Configuration read from DESIGNGATE_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="DESIGNGATE_", extra="ignore")

    database_url: str = "sqlite:///./designgate.db"
    model: str | None = None
    llm_api_base: str | None = None
    llm_api_key: SecretStr | None = None
    # Zero or less timed out every model call at once; infinity would wait for ever.
    llm_timeout_s: float = Field(default=120.0, gt=0, allow_inf_nan=False)
    # A streamed reply (or generated code) past this is cut off, its text kept, so a model
    # that never stops cannot keep a thread busy and a row growing for ever.
    llm_max_reply_chars: int = Field(default=DEFAULT_MAX_REPLY_CHARS, ge=1)
    secret_key: SecretStr | None = None
    max_body_bytes: int = Field(default=ONE_MIB, ge=1)
    # How long `designgate serve` waits for a request's headers, and for the next piece of a
    # request's body (app/http_protocol.py).
    request_header_timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    request_body_idle_timeout_s: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    # How long a request's whole body may take to arrive once the app asks for it, in any
    # server (app/problems.py); a route that takes more than max_body_bytes gets longer.
    request_body_timeout_s: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    # How long a request may wait for its turn at the database (the request slots,
    # app/db.py) before it is answered 503 with Retry-After: under a load the server cannot
    # keep up with, callers hear so instead of waiting in an ever longer queue.
    request_queue_timeout_s: float = Field(default=15.0, gt=0, allow_inf_nan=False)
    # Sign-in throttling: failed sign-ins allowed per account and per client address within
    # a sliding window; past either, sign-in is refused (429) until old failures age out.
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_window_s: int = Field(default=900, ge=1)
    # Live event streams one user may hold open at once in one server process (pages' live
    # updates and the API's event streams together): each is an open socket that every
    # change it follows is sent to, so one account cannot open them without end.
    max_streams_per_user: int = Field(default=200, ge=1)
    llm_warmup: bool = True
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (a comma list
    # of addresses or networks, or "*"); unset, no such header is.
    forwarded_allow_ips: str | None = None
    # Debates: which models answer, which stand in, who judges, and how hard to retry.
    models: ModelList = Field(default_factory=list)
    fallback_models: ModelList = Field(default_factory=list)
    judge_model: str | None = None
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_backoff_base_s: float = Field(default=0.5, ge=0)
    llm_backoff_max_s: float = Field(default=8.0, ge=0)
    llm_breaker_threshold: int = Field(default=5, ge=1)
    llm_breaker_cooldown_s: float = Field(default=30.0, ge=0)

    @field_validator("models", "fallback_models", mode="before")
    @classmethod
    def _split_model_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # A folder of the team's own checklist templates (*.yaml, *.yml, *.json).
    templates_dir: Path | None = None

    @field_validator(
        "model",
        "llm_api_base",
        "judge_model",
        "templates_dir",
        "forwarded_allow_ips",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty variable means "not configured", not a model called ""."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _refuse_other_databases(cls, value: str) -> str:
        try:
            url = make_url(normalise_database_url(value))
        except ArgumentError:
            return value  # said when the database is opened, with the URL's own problem
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                "DESIGNGATE_DATABASE_URL must be sqlite:///path or postgresql://...; "
                f"{url.get_backend_name()} databases are not supported"
            )
        return value

    @field_validator("templates_dir", mode="after")
    @classmethod
    def _refuse_a_missing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError("DESIGNGATE_TEMPLATES_DIR is not a folder that can be read")
        return value

    @field_validator("forwarded_allow_ips", mode="after")
    @classmethod
    def _refuse_what_is_not_an_address(cls, value: str | None) -> str | None:
        """uvicorn's middleware would keep a malformed entry as a name no peer ever has,
        so a typo left the proxy untrusted without a word."""
        if value is None or value.strip() == "*":
            return value
        entries = [entry.strip() for entry in value.split(",")]
        for number, entry in enumerate(entries, start=1):
            if not _is_address_or_network(entry):
                raise ValueError(
                    f"DESIGNGATE_FORWARDED_ALLOW_IPS entry {number} is not an IP address or "
                    "network (such as 10.0.0.5 or 10.0.0.0/8); * alone trusts every peer"
                )
        return value

    @field_validator("secret_key", mode="after")
    @classmethod
    def _refuse_placeholder_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """A short or well-known secret would make session cookies forgeable."""
        if value is None:
            return None
        secret = value.get_secret_value()
        if len(secret) < 32 or secret.lower() in {"changeme", "secret", "change-me"}:
            raise ValueError("DESIGNGATE_SECRET_KEY must be at least 32 random characters")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the driver the app uses, whatever plain scheme was given."""
        return normalise_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def debate_models(self) -> list[str]:
        """The models a debate fans out to: DESIGNGATE_MODELS, else the one MODEL."""
        if self.models:
            return list(self.models)
        return [self.model] if self.model else []

    @property
    def selectable_models(self) -> list[str]:
        """Models a thread may name: only configured ones spend the configured key."""
        configured = [*self.debate_models, *([self.model] if self.model else [])]
        return list(dict.fromkeys([*configured, *self.fallback_models]))

    @property
    def judging_model(self) -> str | None:
        return self.judge_model or self.model or (self.models[0] if self.models else None)


def _is_address_or_network(entry: str) -> bool:
    try:
        # Strict, as uvicorn reads it: 10.0.0.5/8 (host bits set) is no network to it.
        ipaddress.ip_network(entry) if "/" in entry else ipaddress.ip_address(entry)
    except ValueError:
        return False
    return True


def normalise_database_url(url: str) -> str:
    """Map plain postgres URLs onto psycopg 3; leave SQLite URLs as they are."""
    for plain in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases, SQLite's own ``file:``
    URIs and other engines."""
    if not url.startswith("sqlite"):
        return None
    parsed = make_url(url)
    if parsed.database in (None, "", ":memory:") or parsed.query.get("uri"):
        return None
    return Path(parsed.database)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
