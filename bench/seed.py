"""A project the size the targets name: 60 items, 3 revisions each, 20 threads, 300 messages."""

from sqlalchemy.orm import Session

from app.db import Database
from app.models import ChecklistItem, Decision, Message, Project, Thread, User
from app.models.enums import Category, DecisionStatus, MessageStatus, Role
from app.services import users

ITEMS = 60
REVISIONS = 3
THREADS = 20
MESSAGES = 300
EMAIL = "bench@example.test"
PASSWORD = "bench-password"


def seed(db: Database) -> tuple[int, str]:
    """Returns the project id and an API token of its member."""
    with db.transaction() as session:
        user = users.create_user(
            session,
            email=EMAIL,
            name="Bench",
            role=Role.MEMBER,
            password=PASSWORD,
        )
        _token, plain = users.create_token(session, user=user, label="bench")
        project = Project(
            name="Bench",
            problem="p" * 500,
            architecture="a" * 2000,
            data_model="d" * 1000,
            created_by_id=user.id,
        )
        session.add(project)
        session.flush()
        _add_items(session, project, user)
        _add_threads(session, project)
        return project.id, plain


def _add_items(session: Session, project: Project, user: User) -> None:
    categories = list(Category)
    for position in range(ITEMS):
        item = ChecklistItem(
            project_id=project.id,
            category=categories[position % 6],
            title=f"Item {position}",
            question="Why?" * 20,
            position=position,
        )
        session.add(item)
        session.flush()
        for revision in range(1, REVISIONS + 1):
            session.add(
                Decision(
                    item_id=item.id,
                    revision=revision,
                    status=DecisionStatus.DECIDED,
                    summary="s" * 200,
                    rationale="r" * 600,
                    alternatives=["x" * 100] * 2,
                    design_version=project.design_version,
                    decided_by_id=user.id,
                )
            )


def _add_threads(session: Session, project: Project) -> None:
    for number in range(THREADS):
        thread = Thread(
            project_id=project.id, mode="open", models=["openai/bench"], title=f"Thread {number}"
        )
        session.add(thread)
        session.flush()
        for turn in range(MESSAGES // THREADS):
            session.add(
                Message(
                    thread_id=thread.id,
                    turn=turn,
                    role="assistant" if turn % 2 else "user",
                    content="m" * 1500,
                    status=MessageStatus.COMPLETE,
                )
            )
