"""HTML routes without a browser: setup, sign-in, CSRF, roles, validation and conflicts."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from app.db import Database
from app.models import Decision, User
from tests import factories
from tests.conftest import Actor
from tests.hardening.web_helpers import PASSWORD, token_in

HTMX = {"HX-Request": "true"}


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    token = token_in(client.get("/login").text)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 200, response.text
    return token_in(client.get("/").text)


def test_every_page_leads_to_setup_until_the_first_admin_exists(client: TestClient) -> None:
    for path in ("/", "/login", "/projects/1", "/admin/users", "/projects/new"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/setup"
    assert client.get("/api/v1/projects").status_code == 401


def test_setup_creates_one_admin_and_then_is_closed(client: TestClient, db: Database) -> None:
    token = token_in(client.get("/setup").text)
    form = {
        "email": "First@Example.test",
        "name": "First",
        "password": PASSWORD,
        "password_again": PASSWORD,
        "csrf_token": token,
    }
    response = client.post("/setup", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/").status_code == 200
    assert client.get("/setup", follow_redirects=False).headers["location"] == "/login"
    fresh_token = token_in(client.get("/").text)
    again = client.post(
        "/setup",
        data={**form, "email": "second@example.test", "csrf_token": fresh_token},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert again.headers["location"] == "/login"
    with db.transaction(write=False) as session:
        assert [(u.email, u.role) for u in session.scalars(select(User))] == [
            ("first@example.test", "admin")
        ]


def test_setup_shows_errors_next_to_their_fields(client: TestClient) -> None:
    token = token_in(client.get("/setup").text)
    response = client.post(
        "/setup",
        data={"email": "not-an-email", "password": "x", "password_again": "x", "csrf_token": token},
    )
    assert response.status_code == 422
    assert 'id="setup-email-error"' in response.text
    assert 'aria-describedby="setup-email-error"' in response.text


def test_a_blank_project_name_is_refused_in_plain_words(client: TestClient, member: Actor) -> None:
    headers = {"X-CSRF-Token": sign_in(client, member.email)}
    response = client.post("/projects", data={"name": "   ", "problem": "p"}, headers=headers)
    assert response.status_code == 422
    assert "Must not be blank." in response.text
    assert "Value error" not in response.text


def test_login_starts_a_new_http_only_same_site_session(client: TestClient, member: Actor) -> None:
    client.get("/login")
    before = client.cookies.get("designgate_session")
    wrong = client.post(
        "/login",
        data={
            "email": member.email,
            "password": "nope",
            "csrf_token": token_in(client.get("/login").text),
        },
    )
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text
    response = client.post(
        "/login",
        data={"email": member.email, "password": PASSWORD, "csrf_token": token_in(wrong.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert client.cookies.get("designgate_session") != before
    assert token_in(client.get("/").text) != token_in(wrong.text)


def test_login_redirects_only_to_paths_on_this_site(client: TestClient, member: Actor) -> None:
    token = token_in(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "email": member.email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.test/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_logout_ends_the_session(client: TestClient, member: Actor) -> None:
    token = sign_in(client, member.email)
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_writes_without_the_csrf_token_are_refused_readably(
    client: TestClient, member: Actor
) -> None:
    token = sign_in(client, member.email)
    form = {"name": "P", "problem": "Q"}
    missing = client.post("/projects", data=form, follow_redirects=False)
    assert missing.status_code == 403
    assert "security token" in missing.text
    wrong = client.post("/projects", data=form, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    htmx = client.post("/projects", data=form, headers=HTMX)
    assert htmx.headers["HX-Retarget"] == "#flash"
    assert 'role="alert"' in htmx.text
    created = client.post("/projects", data={**form, "csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303


def test_a_viewer_sees_no_write_controls_and_is_refused(
    client: TestClient, member: Actor, viewer: Actor
) -> None:
    project = factories.create_project(client, member, name="Viewed")
    token = sign_in(client, viewer.email)
    page = client.get(f"/projects/{project['id']}").text
    assert "Generate code" not in page
    assert "decision-form" not in page
    assert 'id="design-form"' not in page
    item = factories.checklist(client, member, project["id"])[0]
    opened = client.get(f"/items/{item['id']}", headers=HTMX)
    assert opened.status_code == 200
    assert item["question"] in opened.text
    assert "decision-form" not in opened.text
    assert "threads/new" not in opened.text
    forged = client.post(
        f"/items/{item['id']}/decision",
        data={"status": "decided", "summary": "s", "rationale": "r", "version": "0"},
        headers={"X-CSRF-Token": token},
    )
    assert forged.status_code == 403
    assert "viewer" in forged.text
    assert (
        client.post(
            f"/projects/{project['id']}/generations", headers={"X-CSRF-Token": token}
        ).status_code
        == 403
    )


def test_a_decision_form_shows_errors_next_to_its_fields(client: TestClient, member: Actor) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    response = client.post(
        f"/items/{item['id']}/decision",
        data={"status": "decided", "summary": " ", "rationale": "because", "version": "0"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert response.status_code == 422
    assert f'id="item-{item["id"]}-summary-error"' in response.text
    assert "because" in response.text  # what was typed is kept


def test_recording_the_last_decision_opens_the_gate_in_the_same_response(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    items = factories.checklist(client, member, project["id"])
    for item in items[:-1]:
        factories.decide(client, member, item)
    token = sign_in(client, member.email)
    page = client.get(f"/projects/{project['id']}").text
    assert re.search(r'id="generate-button"[^>]*disabled', page)
    response = client.post(
        f"/items/{items[-1]['id']}/decision",
        data={"status": "accepted_risk", "summary": "s", "rationale": "r", "version": "0"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert 'id="gate-state" hx-swap-oob="innerHTML"' in response.text
    assert f'id="item-{items[-1]["id"]}-record" hx-swap-oob="innerHTML"' in response.text
    assert f'id="item-{items[-1]["id"]}-state" hx-swap-oob="innerHTML"' in response.text
    assert f'id="item-{items[0]["id"]}-state"' not in response.text  # other rows did not change
    assert re.search(r'id="generate-button"[^>]*>Generate code', response.text)
    assert not re.search(r'id="generate-button"[^>]*disabled', response.text)


def _stale_decision(
    client: TestClient, member: Actor, token: str, item: dict[str, Any], headers: dict[str, str]
) -> Response:
    """Someone else decides ``item`` first; then this form, made before, is sent."""
    factories.decide(client, member, item, summary="Theirs came first")
    return client.post(
        f"/items/{item['id']}/decision",
        data={"status": "decided", "summary": "Mine", "rationale": "My reasons", "version": "0"},
        headers={**headers, "X-CSRF-Token": token},
    )


def test_a_stale_decision_form_gets_a_conflict_that_keeps_the_typed_text(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    response = _stale_decision(client, member, token, item, HTMX)
    assert response.status_code == 409
    assert "Theirs came first" in response.text
    assert "My reasons" in response.text
    assert 'name="version" value="1"' in response.text


def test_a_design_conflict_shows_what_changed_and_keeps_the_typed_text(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"architecture": "Their new architecture", "version": project["version"]},
        headers=member.headers,
    )
    mine = {
        "name": project["name"],
        "problem": project["problem"],
        "architecture": "My architecture",
        "data_model": project["data_model"],
        "constraints": "",
        "version": str(project["version"]),
    }
    response = client.post(
        f"/projects/{project['id']}/design", data=mine, headers={**HTMX, "X-CSRF-Token": token}
    )
    assert response.status_code == 409
    assert "Their new architecture" in response.text
    assert "My architecture" in response.text
    saved = client.post(
        f"/projects/{project['id']}/design",
        data={**mine, "version": str(project["version"] + 1)},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert saved.status_code == 200
    assert "Saved as version" in saved.text


def test_generating_while_the_gate_is_closed_is_refused_with_the_missing_items(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    response = client.post(
        f"/projects/{project['id']}/generations", headers={**HTMX, "X-CSRF-Token": token}
    )
    assert response.status_code == 409
    assert "Code generation is refused" in response.text
    assert response.text.count("has no decision") == 6


def test_user_and_project_text_is_escaped(client: TestClient, member: Actor) -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    project = factories.create_project(client, member, name=hostile, problem=hostile)
    item = factories.checklist(client, member, project["id"])[0]
    factories.decide(client, member, item, summary=hostile, alternatives=[hostile])
    sign_in(client, member.email)
    for path in ("/", f"/projects/{project['id']}", f"/items/{item['id']}"):
        page = client.get(path)
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_admins_manage_users_and_tokens(client: TestClient, admin: Actor, db: Database) -> None:
    token = sign_in(client, admin.email)
    headers = {**HTMX, "X-CSRF-Token": token}
    bad = client.post("/admin/users", data={"email": "nope", "password": "x"}, headers=headers)
    assert bad.status_code == 422
    assert 'id="new-user-email-error"' in bad.text
    created = client.post(
        "/admin/users",
        data={"email": "new@example.test", "name": "New", "role": "viewer", "password": PASSWORD},
        headers=headers,
    )
    assert "Created new@example.test as viewer" in created.text
    with db.transaction(write=False) as session:
        new_user = session.scalar(select(User).where(User.email == "new@example.test"))
        assert new_user is not None
        new_id = new_user.id
    promoted = client.post(f"/admin/users/{new_id}/role", data={"role": "member"}, headers=headers)
    assert "new@example.test is now member" in promoted.text
    last_admin = client.post(
        f"/admin/users/{admin.user_id}/role", data={"role": "member"}, headers=headers
    )
    assert last_admin.status_code == 409

    made = client.post(
        "/admin/tokens", data={"user_id": str(new_id), "label": "ci"}, headers=headers
    )
    plain = re.search(r'id="new-token">([^<]+)<', made.text)
    assert plain
    api_headers = {"Authorization": f"Bearer {plain.group(1)}"}
    assert client.get("/api/v1/me", headers=api_headers).status_code == 200
    assert plain.group(1) not in client.get("/admin/tokens").text  # shown once
    revoke_id = _token_id_for(made.text, "new@example.test")
    client.post(f"/admin/tokens/{revoke_id}/revoke", headers=headers)
    assert client.get("/api/v1/me", headers=api_headers).status_code == 401


def _token_id_for(html: str, email: str) -> str:
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    for row in rows:
        if email in row:
            found = re.search(r"/admin/tokens/(\d+)/revoke", row)
            if found:
                return found.group(1)
    raise AssertionError(f"no revocable token of {email}")


def test_members_cannot_reach_admin_pages(client: TestClient, member: Actor) -> None:
    sign_in(client, member.email)
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "Only an admin" in response.text


def test_a_meeting_decision_through_the_form_records_who_was_there(
    client: TestClient, member: Actor, admin: Actor, db: Database
) -> None:
    project = factories.create_project(client, member)
    started = client.post(f"/api/v1/projects/{project['id']}/meetings", headers=member.headers)
    client.post(f"/api/v1/meetings/{started.json()['id']}/join", headers=admin.headers)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    response = client.post(
        f"/items/{item['id']}/decision",
        data={
            "status": "decided",
            "summary": "s",
            "rationale": "r",
            "version": "0",
            "meeting_id": str(started.json()["id"]),
        },
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert 'id="meeting-stage" hx-swap-oob="innerHTML"' in response.text
    with db.transaction(write=False) as session:
        decision = session.scalars(select(Decision)).one()
        assert sorted(a["user_id"] for a in decision.attendees) == sorted(
            [member.user_id, admin.user_id]
        )
        assert decision.meeting_id == started.json()["id"]


def test_the_gate_panel_alone_is_a_fragment(client: TestClient, member: Actor) -> None:
    project = factories.create_project(client, member)
    sign_in(client, member.email)
    response = client.get(f"/projects/{project['id']}/gate")
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "6 item(s) have no decision" in response.text
    assert "Generate code" in response.text  # a member sees the button


def test_the_review_page_lists_items_as_rows_and_an_opened_item_brings_its_history(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    factories.decide(client, member, item, summary="First thought", rationale="Old reasons")
    factories.decide(
        client, member, item, summary="Second thought", rationale="New reasons", version=1
    )
    sign_in(client, member.email)
    page = client.get(f"/projects/{project['id']}").text
    assert "Second thought" in page  # the row shows the current decision's summary
    assert "First thought" not in page  # older revisions wait until the item is opened
    assert "New reasons" not in page
    assert "decision-form" not in page
    assert f'hx-get="/items/{item["id"]}"' in page
    assert f'<a href="/items/{item["id"]}">' in page  # without JavaScript: the item's own page

    opened = client.get(f"/items/{item['id']}", headers=HTMX)
    assert opened.status_code == 200
    assert "<html" not in opened.text
    assert "New reasons" in opened.text
    assert "First thought" in opened.text
    assert "Revision history (2 revisions)" in opened.text
    assert 'class="decision-form"' in opened.text
    assert 'name="version" value="2"' in opened.text
    full = client.get(f"/items/{item['id']}")
    assert "<html" in full.text
    assert 'class="decision-form"' in full.text
    assert client.get("/items/999999", headers=HTMX).status_code == 404


def test_an_opened_item_needs_a_signed_in_user(client: TestClient, member: Actor) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    response = client.get(f"/items/{item['id']}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_a_conflict_sent_without_javascript_is_answered_with_the_whole_page(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    decision = _stale_decision(client, member, token, item, {})
    client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"architecture": "Their new architecture", "version": project["version"]},
        headers=member.headers,
    )
    design = client.post(
        f"/projects/{project['id']}/design",
        data={"name": "n", "problem": "p", "architecture": "Mine", "version": "1"},
        headers={"X-CSRF-Token": token},
    )
    for response, theirs in ((decision, "Theirs came first"), (design, "Their new architecture")):
        assert response.status_code == 409
        assert response.text.lstrip().lower().startswith("<!doctype html>")
        assert theirs in response.text
        assert "Mine" in response.text
