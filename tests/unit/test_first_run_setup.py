"""First-run setup makes exactly one admin, even when two people submit it at once.

The second setup starts while the first one's transaction is still open. On PostgreSQL it
would count no users (the first admin is not committed yet) and make a second admin; it
must wait for the first and be refused. On SQLite its write transaction already waits."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.db import Database
from app.errors import Conflict
from app.models import User
from app.services import users


def test_two_setups_at_once_make_one_admin(db: Database) -> None:
    outcome: list[BaseException | None] = []

    def second_setup() -> None:
        try:
            with db.transaction() as session:
                users.create_first_admin(
                    session, email="b@example.com", name="B", password="pw-b-12345678"
                )
            outcome.append(None)
        except Exception as exc:  # what it raised is what the test asserts on
            outcome.append(exc)

    with db.writer() as session:
        users.create_first_admin(session, email="a@example.com", name="A", password="pw-a-12345678")
        thread = threading.Thread(target=second_setup)
        thread.start()
        # Time for the second setup to count the users and block behind this transaction.
        thread.join(timeout=0.3)
        session.commit()
    thread.join(timeout=30)
    assert not thread.is_alive()

    assert isinstance(outcome[0], Conflict)
    with db.transaction(write=False) as session:
        emails = session.scalars(select(User.email)).all()
        assert emails == ["a@example.com"]
        assert session.scalar(select(func.count()).select_from(User)) == 1
