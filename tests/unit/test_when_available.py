"""Background work waits out an unavailable database (app/db.py, ``when_available``)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from app import db
from tests.conftest import run_coroutine


class Flaky:
    """Work that finds the database gone for its first ``failures`` attempts."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or OperationalError("UPDATE messages", {}, Exception("refused\nmore"))
        self.attempts = 0

    def __call__(self, value: str) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        return value


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "UNAVAILABLE_RETRY_S", (0.01, 0.02))


def test_work_is_tried_again_until_the_database_answers(caplog: pytest.LogCaptureFixture) -> None:
    work = Flaky(failures=3)
    with caplog.at_level(logging.WARNING, logger="app.db"):
        result = run_coroutine(db.when_available("reply 7", work, "stored"))
    assert (result, work.attempts) == ("stored", 4)
    assert caplog.messages == [
        "reply 7 waits for the database, which is unavailable (refused); trying again until"
        " it is back",
        "reply 7 went on once the database was back",
    ]


def test_work_that_succeeds_at_once_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    work = Flaky(failures=0)
    with caplog.at_level(logging.WARNING, logger="app.db"):
        assert run_coroutine(db.when_available("reply 7", work, "stored")) == "stored"
    assert (work.attempts, caplog.messages) == (1, [])


def test_other_database_errors_are_not_tried_again() -> None:
    work = Flaky(failures=5, error=IntegrityError("INSERT", {}, Exception("duplicate key")))
    with pytest.raises(IntegrityError):
        run_coroutine(db.when_available("reply 7", work, "stored"))
    assert work.attempts == 1


def test_a_statement_sqlite_cannot_run_is_not_tried_again(tmp_path: Path) -> None:
    """SQLite reports it as an OperationalError, as it does a locked or full database."""
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    attempts = []

    def read_missing_table() -> None:
        attempts.append(1)
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(OperationalError, match="no such table"):
        run_coroutine(db.when_available("reply 7", read_missing_table))
    engine.dispose()
    assert attempts == [1]


def test_a_server_that_stops_ends_the_waiting() -> None:
    async def stopped_while_waiting() -> int:
        work = Flaky(failures=1000)
        waiting = asyncio.create_task(db.when_available("reply 7", work, "stored"))
        while work.attempts < 3:
            await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return work.attempts

    assert run_coroutine(stopped_while_waiting()) < 10


def _missing_table_error(path: Path) -> OperationalError:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))
    except OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the statement ran")


def test_a_save_warns_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    outage = db.OutageWarning("the text")
    refused = OperationalError("UPDATE messages", {}, Exception("refused\nmore"))
    with caplog.at_level(logging.WARNING, logger="app.db"):
        outage.failed(refused)
        outage.failed(refused)
        outage.succeeded()
        outage.failed(refused)
    warning = (
        "could not save the text, the database is unavailable (refused); kept until it is back"
    )
    assert caplog.messages == [warning, warning]


def test_a_save_sqlite_cannot_run_is_logged_with_its_traceback_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not taken for an outage: it will not pass by waiting."""
    outage = db.OutageWarning("the text")
    error = _missing_table_error(tmp_path / "empty.db")
    with caplog.at_level(logging.WARNING, logger="app.db"):
        outage.failed(error)
        outage.failed(error)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "could not save the text")
    ] * 2
    assert all(r.exc_info and r.exc_info[1] is error for r in caplog.records)
