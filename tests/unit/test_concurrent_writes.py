"""Two writers based on the same version: one wins, the other gets a Conflict, never an
overwrite. The second writer starts while the first one's transaction is still open: on
PostgreSQL it reads the old version and is stopped by the unique revision or the version
column; on SQLite it waits for the write lock and is stopped by the version check."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict
from app.models import Decision, Project, User
from app.models.enums import DecisionStatus
from app.schemas.checklist import DecisionWrite
from app.schemas.project import ProjectCreate, ProjectUpdate
from app.services import decisions, projects
from tests.conftest import Actor

Write = Callable[[Session, User], object]


def _race(db: Database, actor: Actor, first: Write, second: Write) -> BaseException | None:
    """Run ``first`` in an open transaction, start ``second`` in another thread, then commit
    the first. Returns what the second raised (None if it succeeded)."""
    outcome: list[BaseException | None] = []

    def run_second() -> None:
        try:
            with db.transaction() as session:
                second(session, _user(session, actor))
            outcome.append(None)
        except Exception as exc:  # the outcome is what the test asserts on
            outcome.append(exc)

    with db.writer() as session:
        first(session, _user(session, actor))
        thread = threading.Thread(target=run_second)
        thread.start()
        # Give the second writer time to read and block behind this transaction.
        thread.join(timeout=0.3)
        session.commit()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome[0]


def _user(session: Session, actor: Actor) -> User:
    user = session.get(User, actor.user_id)
    assert user is not None
    return user


def _new_project(db: Database, actor: Actor) -> tuple[int, int]:
    """A project id and the id of its first checklist item."""
    with db.transaction() as session:
        data = ProjectCreate(name="Race", problem="p")
        project = projects.create_project(session, data=data, actor=_user(session, actor))
        return project.id, decisions.checklist(session, project)[0].item.id


def test_two_first_decisions_on_one_item_keep_one_and_refuse_the_other(
    db: Database, member: Actor
) -> None:
    _project_id, item_id = _new_project(db, member)

    def decide(summary: str) -> Write:
        data = DecisionWrite(
            status=DecisionStatus.DECIDED, summary=summary, rationale="r", version=0
        )
        return lambda s, u: decisions.record_decision(s, item_id=item_id, data=data, actor=u)

    assert isinstance(_race(db, member, decide("first"), decide("second")), Conflict)
    with db.transaction(write=False) as session:
        stored = session.scalars(select(Decision).where(Decision.item_id == item_id)).all()
        assert [(d.revision, d.summary) for d in stored] == [(1, "first")]


def test_two_edits_of_one_project_version_keep_one_and_refuse_the_other(
    db: Database, member: Actor
) -> None:
    project_id, _item_id = _new_project(db, member)

    def rename(name: str) -> Write:
        data = ProjectUpdate(version=1, name=name)
        return lambda s, u: projects.update_project(s, project_id=project_id, data=data, actor=u)

    assert isinstance(_race(db, member, rename("first"), rename("second")), Conflict)
    with db.transaction(write=False) as session:
        project = session.get(Project, project_id)
        assert project is not None
        assert (project.name, project.version) == ("first", 2)
