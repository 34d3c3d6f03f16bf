"""Who may write: every write route of the JSON API against every kind of caller.

The routes are read from the app itself, so a new write route is in the matrix the day
it is added. Rules: anonymous 401, viewer 403, member and admin get past authorisation,
except routes that depend on ``require_admin`` (member 403 too). Routes where a caller
acts on what is their own (revoking a token) are listed in OWNER_SCOPED and pinned below.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient

from app.db import Database
from app.deps import get_current_user, require_admin, require_writer
from app.models.enums import Role
from app.services import users
from tests import factories
from tests.conftest import Actor, make_actor
from tests.hardening.routes import dependency_calls, write_routes

OWNER_SCOPED = frozenset({("DELETE", "/api/v1/tokens/{token_id}")})
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/projects"): {"name": "Matrix", "problem": "Who may write?"},
    ("PATCH", "/api/v1/projects/{project_id}"): {"version": 1, "constraints": "none"},
    ("POST", "/api/v1/projects/{project_id}/checklist"): {
        "category": "load",
        "title": "Bursts",
        "question": "What happens at ten times the load?",
    },
    ("PUT", "/api/v1/checklist-items/{item_id}/decision"): {
        "status": "decided",
        "summary": "Queue it",
        "rationale": "Bursts are short",
        "version": 0,
    },
    ("POST", "/api/v1/projects/{project_id}/threads"): {"mode": "open"},
    ("POST", "/api/v1/threads/{thread_id}/messages"): {"content": "Why a queue?"},
}


@dataclass(frozen=True)
class WriteRoute:
    method: str
    path: str
    dependant: Dependant

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def calls(self) -> set[Callable[..., Any]]:
        return set(dependency_calls(self.dependant))

    @property
    def owner_scoped(self) -> bool:
        return (self.method, self.path) in OWNER_SCOPED

    def url(self, ids: dict[str, int]) -> str:
        # An id this test does not know is filled with 1: the rules are about who, not what.
        return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), self.path)


def api_write_routes() -> list[WriteRoute]:
    """Every route under /api/v1 with a write method, as the app routes them."""
    return [WriteRoute(*route) for route in write_routes(lambda path: path.startswith("/api/v1/"))]


WRITE_ROUTES = api_write_routes()


@pytest.fixture
def world(client: TestClient, db: Database) -> dict[str, int]:
    """A project, its first item, a thread, and a token of someone else's."""
    owner = make_actor(db, Role.MEMBER)
    project = factories.create_project(client, owner)
    item = factories.checklist(client, owner, project["id"])[0]
    thread = client.post(
        f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"}, headers=owner.headers
    )
    with db.transaction() as session:
        owner_user = users.get_by_email(session, owner.email)
        other_token, _plain = users.create_token(session, user=owner_user, label="theirs")
    return {
        "project_id": project["id"],
        "item_id": item["id"],
        "thread_id": thread.json()["id"],
        "token_id": other_token.id,
    }


def _call(
    client: TestClient, route: WriteRoute, ids: dict[str, int], headers: dict[str, str]
) -> Any:
    body = BODIES.get((route.method, route.path), {})
    return client.request(route.method, route.url(ids), json=body, headers=headers)


def test_the_matrix_covers_the_write_routes_there_are() -> None:
    found = {str(route) for route in WRITE_ROUTES}
    assert "POST /api/v1/projects" in found
    assert "PUT /api/v1/checklist-items/{item_id}/decision" in found
    assert "DELETE /api/v1/tokens/{token_id}" in found


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=str)
def test_every_write_route_checks_who_is_calling(route: WriteRoute) -> None:
    """A write route must go through the writer or admin check, or be pinned as owner-scoped."""
    assert get_current_user in route.calls
    if not route.owner_scoped:
        assert route.calls & {require_writer, require_admin}, f"{route} lets viewers write"


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=str)
def test_anonymous_callers_are_refused_with_401(
    client: TestClient, world: dict[str, int], route: WriteRoute
) -> None:
    for headers in ({}, {"Authorization": "Bearer dg_not-a-real-token"}):
        response = _call(client, route, world, headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=str)
def test_viewers_are_refused_with_403(
    client: TestClient, world: dict[str, int], viewer: Actor, route: WriteRoute
) -> None:
    response = _call(client, route, world, viewer.headers)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ADMIN])
@pytest.mark.parametrize("route", WRITE_ROUTES, ids=str)
def test_members_and_admins_get_past_authorisation(
    client: TestClient, db: Database, world: dict[str, int], route: WriteRoute, role: Role
) -> None:
    actor = make_actor(db, role)
    response = _call(client, route, world, actor.headers)
    admin_only = require_admin in route.calls
    if role == Role.MEMBER and (admin_only or route.owner_scoped):
        # world's token is someone else's: only an admin may revoke it.
        assert response.status_code == 403, response.text
    else:
        assert response.status_code not in (401, 403), response.text


# --- tokens: listed, revoked, refused at once ------------------------------------------


def _token_ids(client: TestClient, actor: Actor) -> list[int]:
    response = client.get("/api/v1/tokens", headers=actor.headers)
    assert response.status_code == 200, response.text
    return [token["id"] for token in response.json()]


@pytest.mark.parametrize("role", list(Role))
def test_anyone_can_revoke_their_own_token_and_it_is_refused_at_once(
    client: TestClient, db: Database, role: Role
) -> None:
    actor = make_actor(db, role)
    assert client.get("/api/v1/me", headers=actor.headers).status_code == 200
    [token_id] = _token_ids(client, actor)
    revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=actor.headers)
    assert revoked.status_code == 204, revoked.text
    refused = client.get("/api/v1/me", headers=actor.headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


def test_a_revoked_token_is_refused_on_writes_too(
    client: TestClient, db: Database, admin: Actor, member: Actor
) -> None:
    factories.create_project(client, member)
    [token_id] = _token_ids(client, member)
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=admin.headers).status_code == 204
    body = {"name": "After", "problem": "Revoked"}
    response = client.post("/api/v1/projects", json=body, headers=member.headers)
    assert response.status_code == 401


def test_someone_elses_token_is_not_theirs_to_revoke(
    client: TestClient, member: Actor, viewer: Actor
) -> None:
    [token_id] = _token_ids(client, member)
    refused = client.delete(f"/api/v1/tokens/{token_id}", headers=viewer.headers)
    assert refused.status_code == 403
    assert client.get("/api/v1/me", headers=member.headers).status_code == 200


def test_the_token_list_shows_only_the_callers_tokens_and_no_secret(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    with db.transaction() as session:
        user = users.get_by_email(session, member.email)
        users.create_token(session, user=user, label="laptop")
    listed = client.get("/api/v1/tokens", headers=member.headers).json()
    assert [token["label"] for token in listed] == ["tests", "laptop"]
    assert set(listed[0]) == {"id", "label", "created_at", "last_used_at", "revoked_at"}
    assert len(_token_ids(client, admin)) == 1


def test_revoking_twice_keeps_the_first_revocation(
    client: TestClient, member: Actor, admin: Actor
) -> None:
    [token_id] = _token_ids(client, member)
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=admin.headers).status_code == 204
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=admin.headers).status_code == 204
    unknown = client.delete(f"/api/v1/tokens/{2**31 - 1}", headers=admin.headers)
    assert unknown.status_code == 404


def test_the_cli_revokes_a_token(client: TestClient, member: Actor, database_url: str) -> None:
    [token_id] = _token_ids(client, member)
    result = subprocess.run(
        [sys.executable, "-m", "app", "token", "revoke", str(token_id)],
        env={"DESIGNGATE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"revoked token {token_id}" in result.stdout
    assert client.get("/api/v1/me", headers=member.headers).status_code == 401
