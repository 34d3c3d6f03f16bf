"""``Database.reads``: on PostgreSQL, reads without BEGIN and ROLLBACK around them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import Database
from tests.conftest import is_postgres, make_settings

pytestmark = pytest.mark.skipif(not is_postgres(), reason="SQLite reads keep their transaction")


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    found = Database(make_settings(database_url))
    yield found
    found.dispose()


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
