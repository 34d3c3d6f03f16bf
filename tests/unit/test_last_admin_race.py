"""Two admins taking each other's admin rights away at once leave one active admin.

The second change starts while the first one's transaction is still open. On PostgreSQL it
would count two active admins (the first change is not committed yet) and go through,
leaving none; it must wait for the first and be refused. On SQLite its write transaction
already waits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict
from app.models import User
from app.models.enums import Role
from app.services import users
from tests.races import race

Change = Callable[[Session, int, int], object]


def _deactivate(session: Session, actor_id: int, user_id: int) -> object:
    actor = users.get_user(session, actor_id)
    return users.set_active(session, user_id=user_id, active=False, actor=actor)


def _demote(session: Session, actor_id: int, user_id: int) -> object:
    actor = users.get_user(session, actor_id)
    return users.change_role(session, user_id=user_id, role=Role.MEMBER, actor=actor)


@pytest.mark.parametrize(
    ("first", "second"),
    [(_deactivate, _deactivate), (_demote, _demote), (_deactivate, _demote)],
    ids=["both-deactivate", "both-demote", "deactivate-and-demote"],
)
def test_two_admins_removing_each_other_at_once_keep_one_active_admin(
    db: Database, first: Change, second: Change
) -> None:
    with db.transaction() as session:
        a = users.create_user(
            session, email="a@example.com", name="A", role=Role.ADMIN, password="pw-12345678"
        )
        b = users.create_user(
            session, email="b@example.com", name="B", role=Role.ADMIN, password="pw-12345678"
        )
        a_id, b_id = a.id, b.id

    refused = race(
        db,
        lambda session: first(session, a_id, b_id),
        lambda session: second(session, b_id, a_id),
    )

    assert isinstance(refused, Conflict)
    with db.transaction(write=False) as session:
        admins = session.scalars(
            select(User.email).where(User.role == Role.ADMIN, User.is_active)
        ).all()
        assert admins == ["a@example.com"]
