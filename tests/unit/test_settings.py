"""Settings: DESIGNGATE_* variables, plain database URLs, a secret key that is never a default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings, normalise_database_url
from app.main import create_app
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("plain", "used"),
    [
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgres://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///./designgate.db", "sqlite:///./designgate.db"),
    ],
)
def test_plain_database_urls_are_given_the_apps_driver(plain: str, used: str) -> None:
    assert normalise_database_url(plain) == used


def test_settings_come_from_designgate_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESIGNGATE_DATABASE_URL", "postgresql://db.example/dg")
    monkeypatch.setenv("DESIGNGATE_MODEL", "ollama/llama3")
    monkeypatch.setenv("DESIGNGATE_LLM_API_BASE", "http://127.0.0.1:11434")
    monkeypatch.setenv("DESIGNGATE_LLM_API_KEY", "k")
    monkeypatch.setenv("DESIGNGATE_LLM_TIMEOUT_S", "7.5")
    settings = Settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg://db.example/dg"
    assert (settings.model, settings.llm_api_base) == ("ollama/llama3", "http://127.0.0.1:11434")
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "k"
    assert settings.llm_timeout_s == 7.5


def test_the_defaults_are_a_local_sqlite_file_and_no_model() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///./designgate.db"
    assert (settings.model, settings.secret_key) == (None, None)


def test_a_blank_model_means_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESIGNGATE_MODEL", "  ")
    assert Settings().model is None


@pytest.mark.parametrize(
    "url", ["mysql://x", "postgresql+asyncpg://h/db", "sqlite+aiosqlite:///x.db", "oracle://h"]
)
def test_a_database_the_app_has_no_driver_for_is_refused_as_a_setting(url: str) -> None:
    """mysql:// was a traceback about a driver module that is not installed."""
    with pytest.raises(ValidationError, match="not supported"):
        Settings(database_url=url)


@pytest.mark.parametrize("allowed", ["*", "10.0.0.5", "10.0.0.0/8, ::1", " 192.0.2.1 "])
def test_proxy_addresses_and_networks_are_accepted(allowed: str) -> None:
    assert Settings(forwarded_allow_ips=allowed).forwarded_allow_ips == allowed


@pytest.mark.parametrize("allowed", ["notanip", "10.0.0.5,", "*, 10.0.0.5", "proxy.internal"])
def test_a_proxy_that_is_not_an_address_or_network_is_refused(allowed: str) -> None:
    """uvicorn keeps such an entry as a name no peer has: the proxy went unbelieved unseen."""
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(forwarded_allow_ips=allowed)


def test_a_templates_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    assert Settings(templates_dir=tmp_path).templates_dir == tmp_path
    with pytest.raises(ValidationError, match="not a folder"):
        Settings(templates_dir=tmp_path / "missing")


@pytest.mark.parametrize("secret", ["changeme", "secret", "too-short", "x" * 31])
def test_a_placeholder_or_short_secret_key_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError):
        Settings(secret_key=secret)


def test_without_a_secret_key_one_is_generated_once_and_kept(database_url: str) -> None:
    settings = make_settings(database_url, secret_key=None)
    first = create_app(settings)
    with TestClient(first):
        generated = first.state.secret_key
    second = create_app(settings)
    with TestClient(second):
        assert second.state.secret_key == generated
    assert len(generated) >= 32


def test_importing_the_app_and_the_cli_does_not_import_litellm() -> None:
    check = "import sys, app.main, app.cli; assert 'litellm' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True, timeout=120)


# Loaded on first use, never to answer the first request: model calls, the migration
# machinery (start-up reads the revision without it), Markdown rendering, and (the app
# below being on SQLite) the PostgreSQL driver.
NOT_AT_START_UP = (
    "litellm",
    "openai",
    "httpx",
    "alembic",
    "mako",
    "pygments",
    "markdown_it",
    "psycopg",
)


def test_building_the_app_as_serve_does_imports_nothing_that_waits_for_first_use(
    tmp_path: Path,
) -> None:
    check = (
        "import sys; from app.cli import cli; from app.main import create_app; "
        "from app.config import Settings; "
        f"create_app(Settings(database_url='sqlite:///{tmp_path}/x.db')); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {NOT_AT_START_UP!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_only_app_llm_imports_litellm() -> None:
    importers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*.py")
        if any(
            line.strip().startswith(("import litellm", "from litellm"))
            for line in path.read_text().splitlines()
        )
    ]
    assert importers == ["app/llm.py"]


def test_litellm_heap_is_left_out_of_garbage_collections_once_imported() -> None:
    check = (
        "import gc; from app import llm; before = gc.get_freeze_count(); llm.warm_up(); "
        "print(before, gc.get_freeze_count())"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before, after = (int(number) for number in done.stdout.split())
    assert before == 0
    assert after > 100_000  # litellm and what it imports: about 370,000 objects here


def test_the_readme_documents_every_setting() -> None:
    """The configuration table is how operators learn a setting exists."""
    readme = (ROOT / "README.md").read_text()
    table_rows = [line for line in readme.splitlines() if line.startswith("| `DESIGNGATE_")]
    documented = {line.split("`")[1] for line in table_rows}

    assert documented == {f"DESIGNGATE_{name.upper()}" for name in Settings.model_fields}
