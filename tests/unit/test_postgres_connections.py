"""How the app uses its PostgreSQL connections: pinged before use only after sitting idle
in the pool, reads (``Database.reads``) without BEGIN and ROLLBACK around them, and bounded
waits: for a server that never answers, and for a lock."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app import db as db_module
from app.db import Database
from tests.conftest import is_postgres, make_settings

pytestmark = pytest.mark.skipif(not is_postgres(), reason="PostgreSQL's connections only")


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    found = Database(make_settings(database_url))
    yield found
    found.dispose()


def _backend_pid(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database: Database, pid: int) -> None:
    """End a backend as an operator (or a restart) would, from outside the pool, and wait
    until it has gone."""
    outside = create_engine(database.engine.url, poolclass=NullPool)
    with outside.connect() as connection:
        ended = connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        assert ended.scalar()
    outside.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    ping = database.engine.dialect.do_ping

    def counted_ping(connection: Any) -> bool:
        pings.append(connection)
        return ping(connection)

    monkeypatch.setattr(database.engine.dialect, "do_ping", counted_ping)
    first = _backend_pid(database)
    assert _backend_pid(database) == first
    assert pings == []
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    assert _backend_pid(database) == first
    assert len(pings) == 1


def test_an_idle_connection_the_database_dropped_is_replaced_before_use(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    dropped = _backend_pid(database)
    _terminate(database, dropped)
    assert _backend_pid(database) != dropped


def test_without_the_ping_a_dropped_connection_fails_once_and_the_pool_recovers(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the ping spares an idle connection; a connection dropped within the second
    meets this, and the error replaces every pooled connection."""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 3600.0)
    dropped = _backend_pid(database)
    _terminate(database, dropped)
    with pytest.raises(OperationalError):
        _backend_pid(database)
    assert _backend_pid(database) != dropped


def _transaction_ids(session: Session) -> tuple[int, int]:
    """The ids of the transactions two statements ran in."""
    first = session.execute(text("SELECT txid_current()")).scalar_one()
    second = session.execute(text("SELECT txid_current()")).scalar_one()
    return int(first), int(second)


def test_each_statement_of_a_read_runs_on_its_own(database: Database) -> None:
    with database.reads() as session:
        first, second = _transaction_ids(session)
    assert first != second


def test_the_connection_is_transactional_again_for_the_next_session(database: Database) -> None:
    with database.reads() as session:
        _transaction_ids(session)
    for write in (False, True):
        with database.transaction(write=write) as session:
            first, second = _transaction_ids(session)
        assert first == second


def test_the_apps_connections_wait_for_a_lock_no_longer_than_sqlites_busy_timeout(
    database: Database,
) -> None:
    with database.transaction(write=False) as session:
        shown = session.execute(text("SHOW lock_timeout")).scalar_one()
    assert shown == "10s"  # tests/hardening/test_database_failures.py: what a request then gets


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose TCP connections are accepted (by the kernel's backlog) and then never
    answered, as a wedged server's or a dropped address's would not be."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield listener.getsockname()[1]
    listener.close()


def test_a_server_that_never_answers_fails_the_connection_instead_of_holding_it(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "POSTGRES_CONNECT_TIMEOUT_S", 1)
    database = Database(make_settings(f"postgresql://designgate@127.0.0.1:{silent_server}/x"))
    failures: list[BaseException] = []

    def read() -> None:
        try:
            with database.transaction(write=False) as session:
                session.execute(text("SELECT 1"))
        except OperationalError as exc:
            failures.append(exc)

    attempt = threading.Thread(target=read, daemon=True)
    attempt.start()
    attempt.join(60)  # far past the timeout: only a connection with no timeout is still waiting
    database.dispose()
    assert not attempt.is_alive(), "the connection waited past its connect_timeout"
    assert len(failures) == 1
    assert "timeout" in str(failures[0])


def test_a_connect_timeout_the_database_url_names_is_kept(database_url: str) -> None:
    named = database_url + ("&" if "?" in database_url else "?") + "connect_timeout=17"
    database = Database(make_settings(named))
    try:
        assert database.engine.url.query["connect_timeout"] == "17"
    finally:
        database.dispose()
    database = Database(make_settings(database_url))
    try:
        assert database.engine.url.query["connect_timeout"] == "5"
    finally:
        database.dispose()
