"""The review revision moves with every change a review page shows, whoever makes it.

Rendered review pages and the API's checklist are kept under it (``app/kept.py``): a change
it missed would leave every viewer looking at an old page. Database triggers keep it, so these tests
change rows as the services do and also as raw SQL does.
"""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from app.db import Database, utcnow
from app.models import ChecklistItem, Generation, Meeting, Message, Project, Thread, User
from app.models.enums import GenerationStatus, MessageStatus
from app.services import review
from tests import factories
from tests.conftest import Actor

# The changes of the list below that only the review page's debates section shows.
DEBATE_CHANGES = {
    "a new thread",
    "a reply finishing",
    "a reply judged",
    "a new message",
    "a thread deleted",
}


def revisions_of(db: Database, project_id: int) -> review.PageRevisions:
    with db.transaction(write=False) as session:
        return review.page_revisions(session, project_id=project_id)


def revision_of(db: Database, project_id: int) -> int:
    return revisions_of(db, project_id).review


def _in_transaction(db: Database, change: Callable[..., object]) -> Callable[[], None]:
    def run() -> None:
        with db.transaction() as session:
            change(session)

    return run


def _thread_with_reply(db: Database, project_id: int) -> tuple[int, int]:
    with db.transaction() as session:
        thread = Thread(project_id=project_id, mode="open", models=["m"], title="T")
        session.add(thread)
        session.flush()
        reply = Message(thread_id=thread.id, turn=1, role="assistant", status="streaming")
        session.add(reply)
        session.flush()
        return thread.id, reply.id


def test_every_kind_of_change_the_review_page_shows_moves_the_revision(
    client: TestClient, db: Database, member: Actor
) -> None:
    project_id = factories.create_project(client, member)["id"]
    items = factories.checklist(client, member, project_id)
    thread_id, reply_id = _thread_with_reply(db, project_id)
    path = f"/api/v1/projects/{project_id}"
    changes: list[tuple[str, Callable[[], object]]] = [
        ("a decision", lambda: factories.decide(client, member, items[0])),
        (
            "a new checklist item",
            lambda: client.post(
                f"{path}/checklist",
                json={"category": "load", "title": "Extra", "question": "What then?"},
                headers=member.headers,
            ),
        ),
        (
            "a design edit",
            lambda: client.patch(
                path, json={"problem": "Changed.", "version": 1}, headers=member.headers
            ),
        ),
        (
            "an item's title, by raw SQL",
            _in_transaction(
                db,
                lambda s: s.execute(
                    text("UPDATE checklist_items SET title = 'Renamed' WHERE id = :id"),
                    {"id": items[1]["id"]},
                ),
            ),
        ),
        (
            "a new thread",
            _in_transaction(
                db, lambda s: s.add(Thread(project_id=project_id, mode="blind", models=["m"]))
            ),
        ),
        (
            "a reply finishing",
            _in_transaction(
                db,
                lambda s: s.execute(
                    update(Message)
                    .where(Message.id == reply_id)
                    .values(status=MessageStatus.COMPLETE, tokens_out=12)
                ),
            ),
        ),
        (
            "a reply judged",
            _in_transaction(
                db,
                lambda s: s.execute(
                    update(Message).where(Message.id == reply_id).values(flags=["capitulated"])
                ),
            ),
        ),
        (
            "a new message",
            _in_transaction(
                db,
                lambda s: s.add(
                    Message(thread_id=thread_id, turn=2, role="user", status="complete")
                ),
            ),
        ),
        (
            "a code generation",
            _in_transaction(
                db,
                lambda s: s.add(
                    Generation(project_id=project_id, status=GenerationStatus.STREAMING, model="m")
                ),
            ),
        ),
        (
            "a generation finishing",
            _in_transaction(
                db,
                lambda s: s.execute(
                    update(Generation)
                    .where(Generation.project_id == project_id)
                    .values(status=GenerationStatus.COMPLETE)
                ),
            ),
        ),
        (
            "a meeting starting",
            _in_transaction(db, lambda s: s.add(Meeting(project_id=project_id))),
        ),
        (
            "a meeting ending",
            _in_transaction(
                db,
                lambda s: s.execute(
                    update(Meeting)
                    .where(Meeting.project_id == project_id)
                    .values(ended_at=utcnow())
                ),
            ),
        ),
        (
            "a decision author's new name",
            _in_transaction(
                db,
                lambda s: s.execute(
                    update(User).where(User.id == member.user_id).values(name="Renamed")
                ),
            ),
        ),
        (
            "a decision author's new email",
            _in_transaction(
                db,
                lambda s: s.execute(
                    update(User)
                    .where(User.id == member.user_id)
                    .values(email="renamed@example.test")
                ),
            ),
        ),
        (
            "an item deleted",
            _in_transaction(
                db,
                lambda s: s.execute(
                    text("DELETE FROM checklist_items WHERE id = :id"), {"id": items[2]["id"]}
                ),
            ),
        ),
        (
            "a thread deleted",
            _in_transaction(
                db,
                lambda s: s.execute(text("DELETE FROM threads WHERE id = :id"), {"id": thread_id}),
            ),
        ),
    ]
    assert {what for what, _change in changes} >= DEBATE_CHANGES
    for what, change in changes:
        before = revisions_of(db, project_id)
        change()
        after = revisions_of(db, project_id)
        assert after.review > before.review, what
        if what in DEBATE_CHANGES:
            # The rest of the page is kept: only its debates section is rendered again.
            assert after.debates > before.debates, what
            assert after.outside_debates == before.outside_debates, what
        else:
            assert after.outside_debates > before.outside_debates, what


def test_saving_a_streamed_replys_text_leaves_the_revision_alone(
    client: TestClient, db: Database, member: Actor
) -> None:
    """The page shows no reply text; a hundred replies saving every second would otherwise
    make every page a fresh rendering."""
    project_id = factories.create_project(client, member)["id"]
    _thread_id, reply_id = _thread_with_reply(db, project_id)
    before = revision_of(db, project_id)
    with db.transaction() as session:
        reply = session.get(Message, reply_id)
        assert reply is not None
        reply.content = "Partial text of the reply"
        reply.first_token_ms = 40
        reply.updated_at = utcnow()
    assert revision_of(db, project_id) == before


def test_a_change_to_one_project_leaves_the_others_alone(
    client: TestClient, db: Database, member: Actor
) -> None:
    watched = factories.create_project(client, member)["id"]
    other = factories.create_project(client, member)["id"]
    before = revision_of(db, watched)
    factories.decide(client, member, factories.checklist(client, member, other)[0])
    with db.transaction() as session:
        session.execute(
            update(ChecklistItem).where(ChecklistItem.project_id == other).values(title="X")
        )
        session.execute(update(Project).where(Project.id == other).values(name="Other"))
    assert revision_of(db, watched) == before
    assert revision_of(db, other) > 0


def test_on_postgresql_a_write_locks_its_project_only_while_it_commits(
    client: TestClient, db: Database, member: Actor
) -> None:
    """The revision is bumped by deferred triggers, at commit: an open transaction that has
    written to a project does not hold the project's row, so other writes to the project
    are not queued behind it (a hundred replies posted at once were)."""
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers anyway; its triggers are not deferrable")
    project_id = factories.create_project(client, member)["id"]
    before = revision_of(db, project_id)
    with db.transaction() as writing:
        writing.add(Thread(project_id=project_id, mode="open", models=["m"], title="Open"))
        writing.flush()
        with db.transaction() as other:  # as an UPDATE of it would lock it; NOWAIT: fail at once
            other.execute(
                text("SELECT id FROM projects WHERE id = :id FOR NO KEY UPDATE NOWAIT"),
                {"id": project_id},
            )
        assert revision_of(db, project_id) == before
    assert revision_of(db, project_id) == before + 1
