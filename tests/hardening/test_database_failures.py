"""The database failing a request in ways other than going away: no room to write (SQLite's
disk full; a PostgreSQL database set read-only, as managed services do when its storage is
nearly full), a lock another PostgreSQL client holds, and a statement the database cannot run
(a table missing: a bug, or a database tampered with).

An outage is a 503 with Retry-After whose log line says why (a full disk reads differently
from a refused connection), and nothing is written; a statement that cannot run is a 500,
like any other bug, not a 503 that clients would wait out. Pages say either in HTML.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from app import db as app_db
from app import migrate
from app.config import normalise_database_url
from app.main import create_app
from app.models.enums import Role
from tests import factories
from tests.api.asserts import assert_problem
from tests.conftest import Actor, is_postgres, make_actor, make_settings
from tests.hardening.web_helpers import sign_in, token_in
from tests.llm_server import Reply, ScriptedLLM

only_postgres = pytest.mark.skipif(not is_postgres(), reason="SQLite has its busy timeout")


@pytest.fixture
def scratch_app(scratch_database_url: str) -> FastAPI:
    """An app on a database of its own, which these tests may fill or break."""
    migrate.upgrade(scratch_database_url)
    return create_app(make_settings(scratch_database_url))


@pytest.fixture
def scratch_client(scratch_app: FastAPI) -> Iterator[TestClient]:
    # A 500 is answered, not raised into the test, as a real server would answer it.
    with TestClient(scratch_app, raise_server_exceptions=False) as client:
        yield client


def _engine(app: FastAPI) -> Engine:
    engine: Engine = app.state.db.engine
    return engine


@contextlib.contextmanager
def full_disk(engine: Engine) -> Iterator[None]:
    """While open, SQLite cannot grow the file: as if the disk were full (SQLITE_FULL)."""
    with engine.connect() as connection:
        pages = connection.execute(text("PRAGMA page_count")).scalar_one()

    def limit(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", limit)
    engine.dispose()  # every connection from now on has the limit
    try:
        yield
    finally:
        event.remove(engine, "connect", limit)
        engine.dispose()


@contextlib.contextmanager
def read_only(database_url: str, engine: Engine) -> Iterator[None]:
    """While open, the PostgreSQL database takes no write, as managed services make one whose
    storage is nearly full; lifted afterwards, the app's connections are left as they are."""
    url = make_url(normalise_database_url(database_url))
    name = url.database
    # Connected to another database: a new session in this one could not lift the setting.
    admin = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    engine.dispose()  # a session takes the setting when it starts, as a reload gives it to all
    try:
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        admin.dispose()


@contextlib.contextmanager
def no_room_to_write(app: FastAPI, database_url: str) -> Iterator[str]:
    """While open, the database takes no write: SQLite's disk is full, PostgreSQL's database
    read-only. Yields what the log should give as the reason."""
    if is_postgres():
        with read_only(database_url, _engine(app)):
            yield "in a read-only transaction"
    else:
        with full_disk(_engine(app)):
            yield "database or disk is full"


def _first_items_decision_url(client: TestClient, app: FastAPI) -> tuple[Actor, int, str]:
    """A member, their new project, and where they record the decision of its first item."""
    member = make_actor(app.state.db, Role.MEMBER)
    project_id = int(factories.create_project(client, member)["id"])
    item = factories.checklist(client, member, project_id)[0]
    return member, project_id, f"/api/v1/checklist-items/{item['id']}/decision"


def _decision(version: int) -> dict[str, Any]:
    # Long enough to need pages the file does not have.
    return {"status": "decided", "summary": "Pool", "rationale": "x" * 60_000, "version": version}


def test_a_database_that_takes_no_writes_is_a_503_whose_log_says_why_and_nothing_is_lost(
    scratch_app: FastAPI,
    scratch_client: TestClient,
    scratch_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member, project_id, url = _first_items_decision_url(scratch_client, scratch_app)

    with (
        no_room_to_write(scratch_app, scratch_database_url) as reason,
        caplog.at_level(logging.WARNING, "app.problems"),
    ):
        refused = scratch_client.put(url, json=_decision(0), headers=member.headers)

    assert_problem(refused, 503)
    assert refused.headers["retry-after"] == "2"
    assert f"PUT {url}" in caplog.text
    assert reason in caplog.text
    assert factories.checklist(scratch_client, member, project_id)[0]["decision"] is None
    # Once there is room, the same request (the same version) is recorded.
    accepted = scratch_client.put(url, json=_decision(0), headers=member.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["version"] == 1


def test_a_database_that_takes_no_writes_is_a_readable_503_on_a_page(
    scratch_app: FastAPI,
    scratch_client: TestClient,
    scratch_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = make_actor(scratch_app.state.db, Role.MEMBER)
    token = sign_in(scratch_client, member.email)

    form = {"name": "Full", "problem": "y" * 60_000, "csrf_token": token}
    with (
        no_room_to_write(scratch_app, scratch_database_url) as reason,
        caplog.at_level(logging.WARNING, "app.problems"),
    ):
        refused = scratch_client.post("/projects", data=form, follow_redirects=False)

    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["retry-after"] == "2"
    assert "try again shortly" in refused.text
    assert reason in caplog.text
    listed = scratch_client.get("/api/v1/projects", headers=member.headers)
    assert listed.json() == []


@contextlib.contextmanager
def locked_by_another_client(database_url: str, table: str) -> Iterator[None]:
    """``table`` locked, as an operator's ``LOCK TABLE`` or another server's long migration
    would hold it, until the block ends."""
    engine = create_engine(normalise_database_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            yield
            connection.rollback()
    finally:
        engine.dispose()


@only_postgres
def test_a_lock_held_elsewhere_is_a_503_after_the_lock_timeout_not_a_wait_without_end(
    scratch_app: FastAPI,
    scratch_client: TestClient,
    scratch_database_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, project_id, url = _first_items_decision_url(scratch_client, scratch_app)
    monkeypatch.setattr(app_db, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    _engine(scratch_app).dispose()  # connections made from now on have the shorter timeout

    with (
        locked_by_another_client(scratch_database_url, "checklist_items"),
        caplog.at_level(logging.WARNING, "app.problems"),
    ):
        refused = scratch_client.put(url, json=_decision(0), headers=member.headers)

    assert_problem(refused, 503)
    assert refused.headers["retry-after"] == "2"
    assert "lock timeout" in caplog.text
    assert factories.checklist(scratch_client, member, project_id)[0]["decision"] is None
    accepted = scratch_client.put(url, json=_decision(0), headers=member.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["version"] == 1


def test_a_reply_that_ends_while_the_database_takes_no_writes_is_stored_whole_afterwards(
    scratch_database_url: str, llm: ScriptedLLM
) -> None:
    """The model's work has no request to answer 503: its saves wait for the database."""
    migrate.upgrade(scratch_database_url)
    settings = make_settings(
        scratch_database_url,
        model="openai/scripted-model",
        llm_api_base=llm.api_base,
        llm_api_key="test-key",
        llm_warmup=False,
    )
    app = create_app(settings)
    text_of_the_reply = "A consumer that writes each order once. " * 1500  # 60 KB: new pages
    reply = Reply(text=text_of_the_reply, chunk_size=6000, stall_after_chunks=2, stall_s=1.0)
    llm.script(reply)
    with TestClient(app) as client:
        member = make_actor(app.state.db, Role.MEMBER)
        project = factories.create_project(client, member)
        thread = client.post(
            f"/api/v1/projects/{project['id']}/threads",
            json={"mode": "open"},
            headers=member.headers,
        ).json()
        disk = threading.Thread(
            target=_no_room_while_the_reply_ends, args=(app, scratch_database_url, reply)
        )
        disk.start()
        with warnings_of("app.db") as warnings:
            # The test client returns once the reply's work is done, saves included.
            posted = client.post(
                f"/api/v1/threads/{thread['id']}/messages",
                json={"content": "Go"},
                headers=member.headers,
            )
        disk.join()
        assert posted.status_code == 202
        stored = client.get(f"/api/v1/threads/{thread['id']}", headers=member.headers).json()
    last = stored["messages"][-1]
    assert (last["status"], last["content"]) == ("complete", text_of_the_reply)
    assert any("which is unavailable" in line for line in warnings)


@contextlib.contextmanager
def warnings_of(logger: str) -> Iterator[list[str]]:
    """The warnings ``logger`` logs in the block, from any thread (pytest's caplog caught none
    of the model work's warnings in this test)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logging.getLogger(logger).addHandler(handler)
    try:
        yield messages
    finally:
        logging.getLogger(logger).removeHandler(handler)


def _no_room_while_the_reply_ends(app: FastAPI, database_url: str, reply: Reply) -> None:
    """The database stops taking writes while the model pauses mid-reply, and takes them
    again a while after it has ended (its saves failing meanwhile)."""
    assert reply.stalled.wait(30)
    with no_room_to_write(app, database_url):
        assert reply.sent.wait(30)
        time.sleep(1.5)


def _project_with_a_missing_table(client: TestClient, app: FastAPI) -> tuple[Actor, int]:
    member = make_actor(app.state.db, Role.MEMBER)
    project_id = int(factories.create_project(client, member)["id"])
    with _engine(app).begin() as connection:
        connection.execute(text("DROP TABLE generations"))
    return member, project_id


def test_a_statement_the_database_cannot_run_is_a_500_not_an_outage(
    scratch_app: FastAPI, scratch_client: TestClient
) -> None:
    member, project_id = _project_with_a_missing_table(scratch_client, scratch_app)

    response = scratch_client.get(
        f"/api/v1/projects/{project_id}/generations", headers=member.headers
    )

    assert_problem(response, 500)
    assert "retry-after" not in response.headers


def test_a_page_that_fails_is_a_readable_500(
    scratch_app: FastAPI, scratch_client: TestClient
) -> None:
    member, project_id = _project_with_a_missing_table(scratch_client, scratch_app)
    sign_in(scratch_client, member.email)

    page = scratch_client.get(f"/projects/{project_id}")

    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "The server failed to handle this request" in page.text
    assert token_in(page.text)  # the signed-in page around it, with its forms' token
    assert "Sign out" in page.text
