"""Two writers based on the same version: one wins, the other gets a Conflict, never an
overwrite. The second writer starts while the first one's transaction is still open: on
PostgreSQL it reads the old version and is stopped by the unique revision or the version
column; on SQLite it waits for the write lock and is stopped by the version check."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict
from app.models import Decision, Project, User
from app.models.enums import DecisionStatus, Role
from app.schemas.checklist import DecisionWrite
from app.schemas.project import ProjectCreate, ProjectUpdate
from app.services import decisions, projects, users
from tests.conftest import Actor
from tests.races import race

PW = "a long enough password"

Write = Callable[[Session, User], object]


def _race(db: Database, actor: Actor, first: Write, second: Write) -> BaseException | None:
    """``first`` and ``second`` at once, each as the actor (see ``tests.races.race``)."""
    return race(
        db,
        lambda session: first(session, _user(session, actor)),
        lambda session: second(session, _user(session, actor)),
    )


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


def test_two_accounts_with_one_email_at_once_keep_one_and_refuse_the_other(
    db: Database,
) -> None:
    """Each found no such user yet: on PostgreSQL the second insert broke the unique index,
    an IntegrityError (a 500 on the admin page, a traceback on the command line)."""

    def create(name: str) -> Callable[[Session], None]:
        def write(session: Session) -> None:
            users.create_user(
                session, email="same@example.test", name=name, role=Role.MEMBER, password=PW
            )

        return write

    refused = race(db, create("first"), create("second"))

    assert isinstance(refused, Conflict), refused
    assert "already exists" in refused.detail
    with db.transaction(write=False) as session:
        names = session.scalars(select(User.name).where(User.email == "same@example.test"))
        assert list(names) == ["first"]
