"""Admins deactivate and reactivate users through the API; deactivation holds at once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.models import AuditEvent
from app.models.enums import Role
from tests.conftest import Actor, make_actor


def _audit_actions(db: Database, user_id: int) -> list[tuple[str, int | None]]:
    with db.transaction(write=False) as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "user", AuditEvent.entity_id == user_id)
            .order_by(AuditEvent.id)
        )
        return [(event.action, event.actor_id) for event in events]


def test_a_deactivated_users_token_is_refused_at_once_and_works_again_on_reactivation(
    client: TestClient, db: Database, admin: Actor, member: Actor
) -> None:
    assert client.get("/api/v1/me", headers=member.headers).status_code == 200

    done = client.post(f"/api/v1/users/{member.user_id}/deactivate", headers=admin.headers)

    assert done.status_code == 200, done.text
    assert (done.json()["email"], done.json()["is_active"]) == (member.email, False)
    refused = client.get("/api/v1/me", headers=member.headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    body = {"name": "After", "problem": "Deactivated"}
    assert client.post("/api/v1/projects", json=body, headers=member.headers).status_code == 401

    again = client.post(f"/api/v1/users/{member.user_id}/reactivate", headers=admin.headers)

    assert again.status_code == 200, again.text
    assert again.json()["is_active"] is True
    assert client.get("/api/v1/me", headers=member.headers).json()["is_active"] is True
    assert _audit_actions(db, member.user_id)[-2:] == [
        ("user.deactivated", admin.user_id),
        ("user.reactivated", admin.user_id),
    ]


def test_deactivating_twice_changes_nothing_the_second_time(
    client: TestClient, db: Database, admin: Actor, member: Actor
) -> None:
    url = f"/api/v1/users/{member.user_id}/deactivate"
    assert client.post(url, headers=admin.headers).status_code == 200
    assert client.post(url, headers=admin.headers).status_code == 200
    assert [a for a, _ in _audit_actions(db, member.user_id)].count("user.deactivated") == 1


def test_the_last_active_admin_cannot_be_deactivated(
    client: TestClient, db: Database, admin: Actor
) -> None:
    refused = client.post(f"/api/v1/users/{admin.user_id}/deactivate", headers=admin.headers)

    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == (
        f"{admin.email} is the last active admin; make someone else an admin first"
    )
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200
    assert "user.deactivated" not in [a for a, _ in _audit_actions(db, admin.user_id)]


def test_an_admin_may_deactivate_another_admin_while_one_stays_active(
    client: TestClient, db: Database, admin: Actor
) -> None:
    second = make_actor(db, Role.ADMIN)
    done = client.post(f"/api/v1/users/{second.user_id}/deactivate", headers=admin.headers)
    assert done.status_code == 200, done.text
    # The one left is now the last active admin: a deactivated admin does not count.
    last = client.post(f"/api/v1/users/{admin.user_id}/deactivate", headers=admin.headers)
    assert last.status_code == 409


def test_only_admins_deactivate_and_an_unknown_user_is_404(
    client: TestClient, admin: Actor, member: Actor
) -> None:
    url = f"/api/v1/users/{admin.user_id}/deactivate"
    assert client.post(url, headers=member.headers).status_code == 403
    unknown = client.post(f"/api/v1/users/{2**31 - 1}/reactivate", headers=admin.headers)
    assert unknown.status_code == 404
