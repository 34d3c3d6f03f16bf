"""A password of spaces alone is refused wherever a password is set, with the reason under
the password field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.models import User
from tests.conftest import Actor
from tests.hardening.web_helpers import sign_in, token_in

BLANK_PASSWORDS = [" " * 8, "\t" * 8, " \u00a0 \u3000    "]
REFUSAL = "The password cannot be blank"


def _users(db: Database) -> int:
    with db.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


@pytest.mark.parametrize("password", BLANK_PASSWORDS)
def test_setup_refuses_a_blank_password(client: TestClient, db: Database, password: str) -> None:
    token = token_in(client.get("/setup").text)
    form = {
        "email": "first@example.test",
        "name": "First",
        "password": password,
        "password_again": password,
        "csrf_token": token,
    }
    response = client.post("/setup", data=form, follow_redirects=False)

    assert response.status_code == 422
    assert 'id="setup-password-error"' in response.text
    assert REFUSAL in response.text
    assert _users(db) == 0


@pytest.mark.parametrize("password", BLANK_PASSWORDS)
def test_an_admin_cannot_give_a_new_user_a_blank_password(
    client: TestClient, admin: Actor, db: Database, password: str
) -> None:
    headers = {"X-CSRF-Token": sign_in(client, admin.email), "HX-Request": "true"}
    form = {"email": "new@example.test", "name": "New", "role": "member", "password": password}
    before = _users(db)
    response = client.post("/admin/users", data=form, headers=headers)

    assert response.status_code == 422
    assert 'id="new-user-password-error"' in response.text
    assert REFUSAL in response.text
    assert _users(db) == before


def test_a_password_with_spaces_among_other_characters_is_taken(
    client: TestClient, admin: Actor, db: Database
) -> None:
    headers = {"X-CSRF-Token": sign_in(client, admin.email), "HX-Request": "true"}
    form = {"email": "new@example.test", "role": "member", "password": "   a   b   "}
    response = client.post("/admin/users", data=form, headers=headers)

    assert response.status_code == 200, response.text
    assert "Created new@example.test" in response.text
