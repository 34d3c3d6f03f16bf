"""SQL statements per request must not grow with the size of the checklist."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from app.db import Database
from tests import factories
from tests.conftest import Actor


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


def _statements_for(client: TestClient, db: Database, actor: Actor, path: str) -> int:
    client.get(path, headers=actor.headers)  # warm: the token's last use is recorded once
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
    small_count = _statements_for(client, db, member, f"/api/v1/projects/{small}/checklist")
    large_count = _statements_for(client, db, member, f"/api/v1/projects/{large}/checklist")
    assert small_count == large_count
