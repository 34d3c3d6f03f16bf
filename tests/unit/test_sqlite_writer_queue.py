"""SQLite writers of one process queue on a lock of the app's, handed over as each write
transaction ends, instead of polling SQLite's busy handler (which sleeps up to 100 ms a try
and does not wake when the lock is freed).

Each test turns SQLite's own busy timeout off on the app's connections: a writer that reached
SQLite while another held the write lock would fail at once with "database is locked". So a
write that succeeds while another is in progress shows it waited in the app's queue.
"""

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from app.db import Database
from tests.conftest import make_settings


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(make_settings(f"sqlite:///{tmp_path / 'queue.db'}"))

    @event.listens_for(database.engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    with database.transaction() as session:
        session.execute(text("CREATE TABLE notes (body TEXT)"))
    yield database
    database.dispose()


def _write(db: Database, body: str) -> None:
    with db.transaction() as session:
        session.execute(text("INSERT INTO notes VALUES (:body)"), {"body": body})


def _bodies(db: Database) -> list[str]:
    with db.transaction(write=False) as session:
        return list(session.execute(text("SELECT body FROM notes ORDER BY rowid")).scalars())


def _waiting_in_queue(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "enter" and "self" in frame.f_locals:
            return True
        frame = frame.f_back
    return False


def test_a_writer_waits_for_the_one_in_progress_and_goes_next(db: Database) -> None:
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            _write(db, "second")
        except BaseException as exc:
            errors.append(exc)

    with db.transaction() as session:
        session.execute(text("INSERT INTO notes VALUES ('first')"))
        waiter = threading.Thread(target=second_writer)
        waiter.start()
        deadline = time.monotonic() + 10
        while not _waiting_in_queue(waiter):  # ordering only: no figure is asserted on time
            assert time.monotonic() < deadline, "the second writer never queued"
            time.sleep(0.01)
    waiter.join(10)
    assert errors == []
    assert _bodies(db) == ["first", "second"]


def _failing_write(db: Database) -> None:
    with db.transaction() as session:
        session.execute(text("INSERT INTO notes VALUES ('lost')"))
        raise RuntimeError("the request failed")


def test_a_rolled_back_or_abandoned_write_hands_over_too(db: Database) -> None:
    with pytest.raises(RuntimeError):
        _failing_write(db)
    abandoned = db.writer()
    abandoned.execute(text("INSERT INTO notes VALUES ('never committed')"))
    abandoned.close()  # back to the pool, which rolls back
    _write(db, "kept")
    assert _bodies(db) == ["kept"]


def test_reads_do_not_queue_behind_a_write(db: Database) -> None:
    _write(db, "committed")
    with db.transaction() as session:
        session.execute(text("INSERT INTO notes VALUES ('pending')"))
        assert _bodies(db) == ["committed"]  # from another connection, in the same thread
