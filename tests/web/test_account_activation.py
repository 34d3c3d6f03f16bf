"""An admin deactivates and reactivates a user from the users page."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Actor
from tests.hardening.web_helpers import PASSWORD, sign_in, token_in

HTMX = {"HX-Request": "true"}


def test_deactivating_a_user_ends_their_session_and_reactivating_lets_them_sign_in_again(
    app: FastAPI, client: TestClient, admin: Actor, member: Actor
) -> None:
    headers = {**HTMX, "X-CSRF-Token": sign_in(client, admin.email)}
    theirs = TestClient(app)
    sign_in(theirs, member.email)
    assert theirs.get("/", follow_redirects=False).status_code == 200
    assert f'action="/admin/users/{member.user_id}/deactivate"' in client.get("/admin/users").text

    done = client.post(f"/admin/users/{member.user_id}/deactivate", headers=headers)

    assert done.status_code == 200, done.text
    assert f"{member.email} is deactivated" in done.text
    assert f'action="/admin/users/{member.user_id}/reactivate"' in done.text
    assert theirs.get("/", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/me", headers=member.headers).status_code == 401
    form = {
        "email": member.email,
        "password": PASSWORD,
        "csrf_token": token_in(theirs.get("/login").text),
    }
    refused = theirs.post("/login", data=form, follow_redirects=False)
    assert refused.status_code == 401, refused.text  # the form again, with its message
    assert theirs.get("/", follow_redirects=False).status_code == 303

    again = client.post(f"/admin/users/{member.user_id}/reactivate", headers=headers)

    assert again.status_code == 200, again.text
    assert f"{member.email} is active again" in again.text
    # The session that was ended stays ended; a new sign-in works.
    assert theirs.get("/", follow_redirects=False).status_code == 303
    sign_in(theirs, member.email)
    assert theirs.get("/", follow_redirects=False).status_code == 200


def test_the_last_active_admin_is_not_deactivated_from_the_page(
    client: TestClient, admin: Actor
) -> None:
    headers = {**HTMX, "X-CSRF-Token": sign_in(client, admin.email)}

    refused = client.post(f"/admin/users/{admin.user_id}/deactivate", headers=headers)

    assert refused.status_code == 409
    # The users list again, its last notice replaced by the refusal.
    assert refused.text.lstrip().startswith('<div id="admin-users">')
    assert (
        'role="alert">'
        + admin.email
        + " is the last active admin; make someone else an admin first."
        in refused.text
    )
    assert client.get("/admin/users", follow_redirects=False).status_code == 200
