"""Shared fixtures. The suite runs on the database named by DESIGNGATE_TEST_DATABASE_URL:
``sqlite`` (the default) or a PostgreSQL server URL, on which a fresh database is made."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# The developer's own configuration must not leak into the tests.
for _name in [n for n in os.environ if n.startswith("DESIGNGATE_") and "TEST" not in n]:
    del os.environ[_name]
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from app import migrate  # noqa: E402
from app.config import Settings, normalise_database_url  # noqa: E402
from app.db import Base, Database  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models.enums import Role  # noqa: E402
from app.services import users  # noqa: E402
from tests.llm_server import ScriptedLLM  # noqa: E402

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
T = TypeVar("T")


def run_coroutine(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a thread of its own. Once a browser test has started
    Playwright, its sync API keeps an event loop running on the main thread for the rest of
    the session, and ``asyncio.run`` refuses to start there: a test run that put the
    browser tests first failed every test after them that ran a scenario of its own."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main).result()


def _server_url() -> str:
    return os.environ.get("DESIGNGATE_TEST_DATABASE_URL", "sqlite")


def is_postgres() -> bool:
    return _server_url().startswith("postgres")


def create_scratch_database(tmp: Path, label: str) -> Iterator[str]:
    """A brand-new empty database on the backend under test; dropped afterwards."""
    server = _server_url()
    if not server.startswith("postgres"):
        yield f"sqlite:///{tmp / f'{label}.db'}"
        return
    name = f"dg_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_database_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_database_url(server)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's database, migrated to head once."""
    tmp = tmp_path_factory.mktemp("db")
    for url in create_scratch_database(tmp, "suite"):
        migrate.upgrade(url)
        yield url


@pytest.fixture
def scratch_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated database of its own, for migration tests."""
    yield from create_scratch_database(tmp_path, "scratch")


@pytest.fixture(scope="session")
def llm_server() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM().start()
    yield server
    server.stop()


@pytest.fixture
def llm(llm_server: ScriptedLLM) -> Iterator[ScriptedLLM]:
    """The scripted model server, emptied for this test."""
    llm_server.reset()
    yield llm_server
    llm_server.reset()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "secret_key": TEST_SECRET}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings with no model configured."""
    return make_settings(database_url)


@pytest.fixture
def model_settings(database_url: str, llm_server: ScriptedLLM) -> Settings:
    """Settings whose model is the scripted server, reached through litellm."""
    return make_settings(
        database_url,
        model="openai/scripted-model",
        llm_api_base=llm_server.api_base,
        llm_api_key="test-key",
        llm_timeout_s=2.0,
        llm_warmup=False,
    )


# How long the clean-up after a test waits for a row or table lock on PostgreSQL (SQLite's
# busy timeout bounds it there). A lock still held then belongs to something the test left
# running, which is named in the error instead of the suite waiting for its own timeout.
CLEAN_UP_LOCK_TIMEOUT = "20s"
_OTHER_SESSIONS = text(
    "SELECT pid, application_name, state, now() - xact_start AS in_transaction_for, query"
    " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _empty_all_tables(database_url: str) -> None:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SET LOCAL lock_timeout = '{CLEAN_UP_LOCK_TIMEOUT}'"))
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    except OperationalError as exc:
        if engine.dialect.name != "postgresql":
            raise
        with engine.connect() as connection:
            others = [dict(row._mapping) for row in connection.execute(_OTHER_SESSIONS)]
        message = f"emptying the tables waited on a lock; other sessions: {others}"
        raise RuntimeError(message) from exc
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touched the suite database leaves it empty."""
    yield
    if "database_url" in request.fixturenames:
        _empty_all_tables(request.getfixturevalue("database_url"))


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


class Actor:
    """A user with an API token, and the headers that authenticate as them."""

    def __init__(self, user_id: int, email: str, role: Role, token: str) -> None:
        self.user_id = user_id
        self.email = email
        self.role = role
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_actor(db: Database, role: Role, email: str | None = None) -> Actor:
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.test"
    with db.transaction() as session:
        user = users.create_user(
            session, email=email, name=role.title(), role=role, password="correct horse battery"
        )
        _token, plain = users.create_token(session, user=user, label="tests")
        return Actor(user.id, user.email, role, plain)


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, Role.ADMIN)


@pytest.fixture
def member(db: Database) -> Actor:
    return make_actor(db, Role.MEMBER)


@pytest.fixture
def viewer(db: Database) -> Actor:
    return make_actor(db, Role.VIEWER)
