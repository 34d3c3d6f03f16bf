"""SQL statements per request must not grow with the size of the checklist."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from app.db import Database
from app.models import Message, Thread, User
from app.models.enums import MessageStatus
from app.schemas.debate import MessageCreate, MessageRead
from app.services import debates
from tests import factories
from tests.conftest import Actor
from tests.web.test_pages import sign_in


@contextmanager
def counted_statements(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", _count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", _count)


def _project_with_extra_items(client: TestClient, actor: Actor, extra: int) -> int:
    project = factories.create_project(client, actor)
    for number in range(extra):
        body = {"category": "load", "title": f"Extra {number}", "question": "What then?"}
        response = client.post(
            f"/api/v1/projects/{project['id']}/checklist", json=body, headers=actor.headers
        )
        assert response.status_code == 201
    factories.decide_all(client, actor, project["id"])
    return int(project["id"])


def _statements_for(
    client: TestClient, db: Database, actor: Actor, path: str, warm: str | None = None
) -> int:
    """Statements of one read of ``path``, after a read of ``warm`` (``path`` itself unless
    given) has recorded the token's last use, which is written once in a while."""
    client.get(warm or path, headers=actor.headers)
    with counted_statements(db) as statements:
        response = client.get(path, headers=actor.headers)
    assert response.status_code == 200
    return len(statements)


def test_gate_check_statements_do_not_grow_with_the_checklist(
    client: TestClient, db: Database, member: Actor
) -> None:
    small = _project_with_extra_items(client, member, extra=0)
    large = _project_with_extra_items(client, member, extra=40)
    small_count = _statements_for(client, db, member, f"/api/v1/projects/{small}/gate")
    large_count = _statements_for(client, db, member, f"/api/v1/projects/{large}/gate")
    assert small_count == large_count
    assert large_count <= 6


def test_checklist_statements_do_not_grow_with_the_checklist(
    client: TestClient, db: Database, member: Actor
) -> None:
    small = _project_with_extra_items(client, member, extra=0)
    large = _project_with_extra_items(client, member, extra=40)
    # The first read of each: a checklist read again unchanged is served from its kept JSON.
    small_count = _first_read(client, db, member, f"/api/v1/projects/{small}/checklist")
    large_count = _first_read(client, db, member, f"/api/v1/projects/{large}/checklist")
    assert small_count == large_count
    assert large_count <= 6


def _first_read(client: TestClient, db: Database, actor: Actor, path: str) -> int:
    return _statements_for(client, db, actor, path, warm="/api/v1/users/me")


def test_a_checklist_read_again_unchanged_reads_only_the_caller_and_the_revision(
    client: TestClient, db: Database, member: Actor
) -> None:
    project_id = _project_with_extra_items(client, member, extra=40)
    path = f"/api/v1/projects/{project_id}/checklist"
    first = _first_read(client, db, member, path)
    with counted_statements(db) as statements:
        again = client.get(path, headers=member.headers)
    assert again.status_code == 200
    # The caller's token and the project's review revisions (and SQLite's BEGIN).
    queries = [statement for statement in statements if statement != "BEGIN"]
    assert len(queries) == 2, statements
    assert len(statements) < first


def _reviewed_project(
    client: TestClient, db: Database, actor: Actor, *, extra: int, revisions: int, threads: int
) -> int:
    """A project whose items all have ``revisions`` decision revisions, with debate threads
    of ten messages each (half of them model replies)."""
    project_id = _project_with_extra_items(client, actor, extra)
    for _ in range(revisions - 1):
        factories.decide_all(client, actor, project_id)
    with db.transaction() as session:
        for number in range(threads):
            thread = Thread(project_id=project_id, mode="open", models=["m"], title=f"T{number}")
            session.add(thread)
            session.flush()
            for turn in range(10):
                role = "assistant" if turn % 2 else "user"
                status = MessageStatus.COMPLETE
                session.add(Message(thread_id=thread.id, turn=turn, role=role, status=status))
    return project_id


def test_review_page_statements_do_not_grow_with_items_revisions_or_threads(
    client: TestClient, db: Database, member: Actor
) -> None:
    small = _reviewed_project(client, db, member, extra=0, revisions=1, threads=1)
    large = _reviewed_project(client, db, member, extra=54, revisions=3, threads=20)
    sign_in(client, member.email)
    small_count = _first_load_statements(client, db, f"/projects/{small}")
    large_count = _first_load_statements(client, db, f"/projects/{large}")
    assert small_count == large_count
    assert large_count <= 12


def test_a_review_page_served_again_reads_only_who_asks_and_the_revision(
    client: TestClient, db: Database, member: Actor
) -> None:
    """While nothing on it changed, a page is not read or rendered again."""
    project_id = _reviewed_project(client, db, member, extra=54, revisions=3, threads=20)
    sign_in(client, member.email)
    first = _first_load_statements(client, db, f"/projects/{project_id}")
    with counted_statements(db) as statements:
        assert client.get(f"/projects/{project_id}").status_code == 200
    # BEGIN, the signed-in user, the project's review revision.
    assert len(statements) <= 3 < first, statements


def _first_load_statements(client: TestClient, db: Database, path: str) -> int:
    with counted_statements(db) as statements:
        response = client.get(path)
    assert response.status_code == 200
    return len(statements)


def test_an_opened_item_costs_the_same_however_many_revisions_it_has(
    client: TestClient, db: Database, member: Actor
) -> None:
    project_id = _reviewed_project(client, db, member, extra=0, revisions=1, threads=0)
    for _ in range(4):
        second = factories.checklist(client, member, project_id)[1]
        factories.decide(client, member, second)
    first = factories.checklist(client, member, project_id)[0]
    sign_in(client, member.email)
    once = _statements_for(client, db, member, f"/items/{first['id']}")
    five_times = _statements_for(client, db, member, f"/items/{second['id']}")
    assert once == five_times


def test_a_post_answers_with_its_messages_without_reading_them_back(
    client: TestClient, db: Database, member: Actor
) -> None:
    """The posted question and its replies are answered as they were written: a hundred
    people posting at once must not cost a read of every row just inserted."""
    project_id = int(factories.create_project(client, member)["id"])
    with db.transaction() as session:
        thread = Thread(project_id=project_id, mode="open", models=["a", "b"], title="T")
        session.add(thread)
        session.flush()
        actor = session.get(User, member.user_id)
        assert actor is not None
        posted = debates.post_message(
            session,
            thread_id=thread.id,
            data=MessageCreate(content="How does this fail?"),
            actor=actor,
            default_models=[],
        )
        session.flush()  # the audit event's INSERT, which the commit would write anyway
        with counted_statements(db) as statements:
            answered = [
                MessageRead.model_validate(m) for m in (posted.user_message, *posted.replies)
            ]
    assert statements == [], "\n".join(statements)
    assert [m.role for m in answered] == ["user", "assistant", "assistant"]
    assert answered[1].model == "a"
    assert answered[1].error is None


def _home_page_statements(client: TestClient, db: Database) -> int:
    with counted_statements(db) as statements:
        response = client.get("/")
    assert response.status_code == 200
    return len(statements)


def test_the_project_list_reads_every_listed_projects_gate_in_one_statement(
    client: TestClient, db: Database, member: Actor
) -> None:
    """The list once asked each project's gate with a statement of its own (N + 1)."""
    for _ in range(2):
        factories.create_project(client, member)
    sign_in(client, member.email)
    two = _home_page_statements(client, db)
    for _ in range(18):
        factories.create_project(client, member)
    twenty = _home_page_statements(client, db)
    assert two == twenty, (two, twenty)
    assert twenty <= 4  # BEGIN, the signed-in user, the projects, their gates
