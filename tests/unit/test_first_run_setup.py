"""First-run setup makes exactly one admin, even when two people submit it at once.

The second setup starts while the first one's transaction is still open. On PostgreSQL it
would count no users (the first admin is not committed yet) and make a second admin; it
must wait for the first and be refused. On SQLite its write transaction already waits."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict
from app.models import User
from app.services import users
from tests.races import race


def test_two_setups_at_once_make_one_admin(db: Database) -> None:
    def setup(email: str) -> Callable[[Session], object]:
        def write(session: Session) -> object:
            return users.create_first_admin(session, email=email, name="A", password="pw-12345678")

        return write

    refused = race(db, setup("a@example.com"), setup("b@example.com"))

    assert isinstance(refused, Conflict)
    with db.transaction(write=False) as session:
        emails = session.scalars(select(User.email)).all()
        assert emails == ["a@example.com"]
        assert session.scalar(select(func.count()).select_from(User)) == 1
