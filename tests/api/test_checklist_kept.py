"""The API's checklist is made into JSON once per change of what it shows and served again
until the next one (``app/api/projects.py``, under the review revision that database triggers
keep): these tests read it, change it in different ways, and read it again."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db import Database
from app.models import User
from app.schemas.checklist import item_read
from app.services import decisions, projects
from tests import factories
from tests.conftest import Actor


def _checklist(client: TestClient, actor: Actor, project_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/projects/{project_id}/checklist", headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    found: list[dict[str, Any]] = response.json()
    return found


def _as_read_now(db: Database, project_id: int) -> list[dict[str, Any]]:
    """The checklist read afresh from the database and put as the response model puts it."""
    with db.transaction(write=False) as session:
        project = projects.get_project(session, project_id)
        return [
            item_read(entry).model_dump(mode="json")
            for entry in decisions.checklist(session, project)
        ]


def test_a_checklist_read_again_is_what_the_database_holds(
    client: TestClient, db: Database, member: Actor
) -> None:
    project_id = factories.create_project(client, member)["id"]
    factories.decide(client, member, factories.checklist(client, member, project_id)[0])
    first = _checklist(client, member, project_id)
    assert first == _as_read_now(db, project_id)
    assert _checklist(client, member, project_id) == first


def test_each_change_the_checklist_shows_is_in_the_next_read(
    client: TestClient, db: Database, member: Actor
) -> None:
    project_id = factories.create_project(client, member)["id"]
    items = _checklist(client, member, project_id)
    decided = factories.decide(client, member, items[0], summary="Nack to a dead-letter queue")
    after_decision = _checklist(client, member, project_id)
    assert after_decision[0]["decision"]["summary"] == "Nack to a dead-letter queue"

    added = client.post(
        f"/api/v1/projects/{project_id}/checklist",
        json={"category": "load", "title": "Burst of retries", "question": "What then?"},
        headers=member.headers,
    )
    assert added.status_code == 201
    assert "Burst of retries" in [item["title"] for item in _checklist(client, member, project_id)]

    edited = client.patch(
        f"/api/v1/projects/{project_id}",
        json={"problem": "Orders arrive twice.", "version": 1},
        headers=member.headers,
    )
    assert edited.status_code == 200, edited.text
    first = _checklist(client, member, project_id)[0]
    assert first["decision"]["id"] == decided["id"]
    assert first["state"] == "stale"
    assert first["decision"]["stale"] is True
    assert _checklist(client, member, project_id) == _as_read_now(db, project_id)


def test_a_change_made_outside_the_app_is_in_the_next_read(
    client: TestClient, db: Database, member: Actor
) -> None:
    """Another process, the CLI or a hand-written UPDATE: the database counts it, a decision
    author's email too."""
    project_id = factories.create_project(client, member)["id"]
    factories.decide(client, member, factories.checklist(client, member, project_id)[0])
    before = _checklist(client, member, project_id)
    with db.transaction() as session:
        session.execute(
            text("UPDATE decisions SET summary = 'Changed by hand' WHERE id = :id"),
            {"id": before[0]["decision"]["id"]},
        )
    assert _checklist(client, member, project_id)[0]["decision"]["summary"] == "Changed by hand"
    with db.transaction() as session:
        user = session.get(User, member.user_id)
        assert user is not None
        user.email = "moved@example.test"
    author = _checklist(client, member, project_id)[0]["decision"]["decided_by"]
    assert author["email"] == "moved@example.test"


def test_a_checklist_is_read_only_by_callers_with_a_live_token(
    client: TestClient, member: Actor
) -> None:
    project_id = factories.create_project(client, member)["id"]
    path = f"/api/v1/projects/{project_id}/checklist"
    assert client.get(path, headers=member.headers).status_code == 200
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    missing = client.get("/api/v1/projects/2147483000/checklist", headers=member.headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Project 2147483000 does not exist"
