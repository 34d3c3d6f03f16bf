"""Every /api/v1 route needs a valid token; viewers read but never write."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.db import Database
from app.models import ApiToken, AuditEvent, ChecklistItem, Decision, Generation, Project
from app.services import users
from tests import factories
from tests.api.asserts import assert_problem
from tests.conftest import Actor

WRITE_METHODS = {"post", "put", "patch", "delete"}
# The writes issue 2 defines; the route listing below must contain at least these.
CORE_WRITES = {
    ("post", "/api/v1/projects"),
    ("patch", "/api/v1/projects/{project_id}"),
    ("post", "/api/v1/projects/{project_id}/checklist"),
    ("put", "/api/v1/checklist-items/{item_id}/decision"),
    ("post", "/api/v1/projects/{project_id}/generations"),
}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every documented /api/v1 operation."""
    paths = app.openapi()["paths"]
    return [
        (method, path)
        for path, operations in paths.items()
        if path.startswith("/api/v1/")
        for method in operations
    ]


ADMIN_READS = {"/api/v1/export"}


def fill(path: str, ids: dict[str, int]) -> str:
    """The path with every {name} replaced by a real id (1 for names this suite does not know)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), path)


@pytest.fixture
def ids(client: TestClient, member: Actor, project: dict[str, Any]) -> dict[str, int]:
    item = factories.checklist(client, member, project["id"])[0]
    return {"project_id": project["id"], "item_id": item["id"], "generation_id": 1}


def test_every_api_route_without_a_token_is_401(
    app: FastAPI, client: TestClient, ids: dict[str, int]
) -> None:
    routes = api_routes(app)
    assert set(routes) >= CORE_WRITES
    for method, path in routes:
        response = client.request(method, fill(path, ids), json={})
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", (method, path)
        assert "Bearer" in body["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer dg_not-a-real-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "dg_token-without-scheme",
    ],
)
def test_a_bad_token_is_401(client: TestClient, ids: dict[str, int], header: str) -> None:
    response = client.get(
        f"/api/v1/projects/{ids['project_id']}", headers={"Authorization": header}
    )
    assert_problem(response, 401)


def test_a_revoked_token_is_401(client: TestClient, db: Database, member: Actor) -> None:
    assert client.get("/api/v1/me", headers=member.headers).status_code == 200
    with db.transaction() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_sha256 == users.token_digest(member.token))
            .values(revoked_at=datetime.now(UTC))
        )
    assert_problem(client.get("/api/v1/me", headers=member.headers), 401)


def test_a_token_of_a_deactivated_user_is_401(
    client: TestClient, db: Database, member: Actor
) -> None:
    with db.transaction() as session:
        user = users.get_by_email(session, member.email)
        user.is_active = False
    assert_problem(client.get("/api/v1/me", headers=member.headers), 401)


def test_a_valid_token_identifies_its_user(client: TestClient, member: Actor) -> None:
    response = client.get("/api/v1/me", headers=member.headers)
    assert response.status_code == 200
    assert (response.json()["email"], response.json()["role"]) == (member.email, "member")


def test_a_viewer_gets_403_on_every_write_and_nothing_changes(
    app: FastAPI, client: TestClient, db: Database, viewer: Actor, ids: dict[str, int]
) -> None:
    # Revoking one's own token is open to every role, viewers included.
    self_service = {("delete", "/api/v1/tokens/{token_id}")}
    writes = [
        (m, p) for m, p in api_routes(app) if m in WRITE_METHODS and (m, p) not in self_service
    ]
    assert set(writes) >= CORE_WRITES
    before = _row_counts(db)
    bodies = {
        "/api/v1/projects": {"name": "V", "problem": "p"},
        "/api/v1/projects/{project_id}": {"version": 1, "name": "V"},
        "/api/v1/projects/{project_id}/checklist": {
            "category": "load",
            "title": "t",
            "question": "q",
        },
        "/api/v1/checklist-items/{item_id}/decision": {
            "status": "decided",
            "summary": "s",
            "rationale": "r",
        },
    }
    for method, path in writes:
        response = client.request(
            method, fill(path, ids), json=bodies.get(path, {}), headers=viewer.headers
        )
        assert_problem(response, 403)
    assert _row_counts(db) == before


def test_a_viewer_can_read_everything(
    app: FastAPI, client: TestClient, viewer: Actor, ids: dict[str, int]
) -> None:
    # Routes whose ids this fixture has; reads that only admins may make are not a viewer's.
    known = {"project_id", "item_id"}
    reads = [
        (m, p)
        for m, p in api_routes(app)
        if m == "get" and set(re.findall(r"\{(\w+)\}", p)) <= known and p not in ADMIN_READS
    ]
    assert ("get", "/api/v1/projects/{project_id}/gate") in reads
    for method, path in reads:
        response = client.request(method, fill(path, ids), headers=viewer.headers)
        assert response.status_code == 200, (path, response.text)


def _row_counts(db: Database) -> dict[str, Any]:
    """How many rows each written table holds, and every project's version."""
    with db.transaction(write=False) as session:
        counts: dict[str, Any] = {
            model.__name__: len(session.scalars(select(model)).all())
            for model in (Project, ChecklistItem, Decision, Generation, AuditEvent)
        }
        versions = session.execute(select(Project.id, Project.version).order_by(Project.id))
        counts["versions"] = [tuple(row) for row in versions]
        return counts
