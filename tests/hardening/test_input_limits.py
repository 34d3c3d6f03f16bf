"""Inputs past what the columns hold are invalid input (422), never a database error."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor
from tests.hardening.web_helpers import PASSWORD, sign_in, snapshot, token_in

HUGE = [2**31, 2**63, 10**30]
# Valid bodies, so only the id in the path is wrong.
BODIES = {
    "/api/v1/checklist-items/{id}/decision": {
        "status": "decided",
        "summary": "s",
        "rationale": "r",
    },
    "/api/v1/threads/{id}/messages": {"content": "c"},
}
PATHS = [
    ("GET", "/api/v1/projects/{id}"),
    ("GET", "/api/v1/projects/{id}/checklist"),
    ("GET", "/api/v1/checklist-items/{id}/decisions"),
    ("PUT", "/api/v1/checklist-items/{id}/decision"),
    ("GET", "/api/v1/generations/{id}"),
    ("GET", "/api/v1/threads/{id}"),
    ("POST", "/api/v1/threads/{id}/messages"),
]


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize(("method", "path"), PATHS)
def test_an_id_past_the_integer_columns_is_invalid_input(
    client: TestClient, admin: Actor, method: str, path: str, number: int
) -> None:
    response = client.request(
        method, path.format(id=number), headers=admin.headers, json=BODIES.get(path)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("number", HUGE)
def test_a_checklist_item_id_past_the_integer_columns_is_invalid_input(
    client: TestClient, admin: Actor, number: int
) -> None:
    project = factories.create_project(client, admin)
    response = client.post(
        f"/api/v1/projects/{project['id']}/threads",
        json={"mode": "failure_walk", "checklist_item_id": number},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "checklist_item_id"


@pytest.mark.parametrize("number", HUGE)
def test_a_token_budget_past_the_integer_column_is_invalid_input(
    client: TestClient, admin: Actor, number: int
) -> None:
    response = client.post(
        "/api/v1/projects",
        json={"name": "n", "problem": "p", "token_budget": number},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "token_budget"


def test_an_unknown_id_within_range_is_not_found(client: TestClient, admin: Actor) -> None:
    response = client.get(f"/api/v1/projects/{2**31 - 1}", headers=admin.headers)
    assert response.status_code == 404


# Found by the soak run of Schemathesis: JSON true taken as the number 1, and lengths
# measured after stripping, so the documented maxLength did not hold.


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n", "problem": "p", "token_budget": True},
        {"name": "n", "problem": "p", "blind_first": 1},
        {"name": "n", "problem": "p", "blind_first": 0},
        {"name": "\t" + "x" * 200, "problem": "p"},
        {"name": "   ", "problem": "p"},
        {"name": "n", "problem": "a\x00b"},
        {"name": "n", "problem": "p", "constraints": "\x00"},
    ],
    ids=[
        "true-as-budget",
        "1-as-flag",
        "0-as-flag",
        "201-with-a-tab",
        "blank-name",
        "nul",
        "nul-2",
    ],
)
def test_json_values_of_the_wrong_kind_are_invalid_input(
    client: TestClient, admin: Actor, body: dict[str, object]
) -> None:
    response = client.post("/api/v1/projects", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text


def test_true_is_not_a_checklist_item_id(client: TestClient, admin: Actor) -> None:
    project = factories.create_project(client, admin)
    response = client.post(
        f"/api/v1/projects/{project['id']}/threads",
        json={"mode": "open", "checklist_item_id": True},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text


def test_names_are_stored_without_surrounding_whitespace(client: TestClient, admin: Actor) -> None:
    project = factories.create_project(client, admin, name="  Orders\t")
    assert project["name"] == "Orders"


def _web_pages_with_ids(app: FastAPI) -> list[str]:
    """Every page and fragment (GET, outside /api) whose path names something by id."""
    return sorted(
        str(route.path)
        for route in iter_route_contexts(app.routes)
        if route.path
        and "GET" in (route.methods or set())
        and not str(route.path).startswith("/api/")
        and "_id}" in str(route.path)
    )


def test_every_web_page_with_an_id_past_the_integer_columns_is_invalid_input(
    client: TestClient, member: Actor
) -> None:
    """On PostgreSQL such an id was a 500 (integer out of range) on every page."""
    sign_in(client, member.email)
    paths = _web_pages_with_ids(client.app)  # type: ignore[arg-type]
    assert "/items/{item_id}" in paths
    assert "/projects/{project_id}" in paths
    for path in paths:
        url = re.sub(r"{[a-z_]+_id}", str(2**31), path)
        response = client.get(url)
        assert response.status_code == 422, (path, response.status_code)
        assert "text/html" in response.headers["content-type"], path


GOOD_ACCOUNT = {"email": "new@example.test", "name": "New", "role": "viewer", "password": PASSWORD}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": "n" * 201}, "name", "at most 200"),
        ({"name": "A\x00B"}, "name", "not allowed"),
        ({"email": "e" * 310 + "@example.test"}, "email", "at most 320"),
        ({"email": "new\x00@example.test"}, "email", "not allowed"),
        ({"password": PASSWORD + "\x00"}, "password", "not allowed"),
        ({"password": "p" * 1025}, "password", "at most 1024"),
    ],
    ids=["long-name", "nul-name", "long-email", "nul-email", "nul-password", "long-password"],
)
def test_the_new_user_form_refuses_text_no_column_holds(
    client: TestClient,
    admin: Actor,
    database_url: str,
    changes: dict[str, str],
    field: str,
    words: str,
) -> None:
    # Forms are not validated by an API schema: on PostgreSQL these were 500s, on SQLite
    # the row was stored as it came.
    headers = {"X-CSRF-Token": sign_in(client, admin.email)}
    before = snapshot(database_url)["users"]
    response = client.post("/admin/users", data={**GOOD_ACCOUNT, **changes}, headers=headers)

    assert response.status_code == 422, response.text
    error = re.search(f'id="new-user-{field}-error"[^>]*>([^<]*)<', response.text)
    assert error is not None, response.text
    assert words in error.group(1)
    assert snapshot(database_url)["users"] == before


def test_a_user_without_a_name_is_named_by_as_much_of_the_email_as_a_name_holds(
    client: TestClient, admin: Actor
) -> None:
    headers = {"X-CSRF-Token": sign_in(client, admin.email)}
    email = "e" * 250 + "@example.test"
    response = client.post(
        "/admin/users", data={**GOOD_ACCOUNT, "email": email, "name": ""}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert f"Created {email} as viewer" in response.text
    assert f">{email[:200]}<" in client.get("/admin/users").text


@pytest.mark.parametrize(
    ("label", "words"), [("l" * 201, "at most 200"), ("CI\x00", "not allowed")], ids=["long", "nul"]
)
def test_the_new_token_form_refuses_a_label_no_column_holds(
    client: TestClient, admin: Actor, database_url: str, label: str, words: str
) -> None:
    headers = {"X-CSRF-Token": sign_in(client, admin.email)}
    before = snapshot(database_url)["api_tokens"]
    data = {"user_id": str(admin.user_id), "label": label}
    response = client.post("/admin/tokens", data=data, headers=headers)

    assert response.status_code == 422, response.text
    error = re.search(r'id="token-label-error"[^>]*>([^<]*)<', response.text)
    assert error is not None, response.text
    assert words in error.group(1)
    assert snapshot(database_url)["api_tokens"] == before


def test_the_first_run_setup_refuses_a_name_no_column_holds(client: TestClient) -> None:
    token = token_in(client.get("/setup").text)
    form = {
        "email": "first@example.test",
        "name": "n" * 201,
        "password": PASSWORD,
        "password_again": PASSWORD,
        "csrf_token": token,
    }
    response = client.post("/setup", data=form)

    assert response.status_code == 422, response.text
    assert 'id="setup-name-error"' in response.text
    assert client.get("/setup", follow_redirects=False).status_code == 200  # still no user


@pytest.mark.parametrize("email", ["ann\x00@example.test", "e" * 5000 + "@example.test"])
def test_signing_in_with_an_email_no_account_can_have_fails_as_any_wrong_one(
    client: TestClient, admin: Actor, email: str
) -> None:
    token = token_in(client.get("/login").text)
    form = {"email": email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login", data=form)

    assert response.status_code == 401, response.text


@pytest.mark.parametrize("opening", ["Why?\x00", "x" * 100_001], ids=["nul", "long"])
def test_a_thread_opening_no_message_could_hold_is_an_error_next_to_it(
    client: TestClient, member: Actor, opening: str
) -> None:
    """The opening was not checked as a message is, so this was a 500 (a ValidationError
    raised after the form's own checks) on both databases."""
    project = factories.create_project(client, member)
    headers = {"X-CSRF-Token": sign_in(client, member.email)}
    form = {"mode": "open", "opening": opening}
    response = client.post(f"/projects/{project['id']}/threads", data=form, headers=headers)

    assert response.status_code == 422, response.text
    assert 'id="thread-opening-error"' in response.text
    threads = client.get(f"/api/v1/projects/{project['id']}/threads", headers=member.headers)
    assert threads.json() == []


def _int_form_fields(app: FastAPI) -> set[tuple[str, str]]:
    """Every (path, field) of a page's form (POST, outside /api) that is a number."""
    return {
        (str(context.path), param.name)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and not str(context.path).startswith("/api/")
        and "POST" in (context.methods or set())
        for param in context.original_route.dependant.body_params
        if param.field_info.annotation is int
    }


def test_an_id_a_form_sends_past_the_integer_columns_is_invalid_input(
    client: TestClient, admin: Actor
) -> None:
    """On PostgreSQL each was a 500 (integer out of range)."""
    project = factories.create_project(client, admin)
    item = factories.checklist(client, admin, project["id"])[0]
    factories.decide(client, admin, item)  # a decision to vote on
    meeting = client.post(f"/api/v1/projects/{project['id']}/meetings", headers=admin.headers)
    meeting_id = meeting.json()["id"]
    client.post(f"/api/v1/meetings/{meeting_id}/join", headers=admin.headers)
    headers = {"X-CSRF-Token": sign_in(client, admin.email)}
    forms = {
        ("/meetings/{meeting_id}/current-item", "item_id"): {"item_id": item["id"]},
        ("/meetings/{meeting_id}/votes", "item_id"): {"item_id": item["id"], "vote": "agree"},
        ("/admin/tokens", "user_id"): {"user_id": admin.user_id, "label": "CI"},
    }
    assert set(forms) == _int_form_fields(client.app)  # type: ignore[arg-type]

    for (path, field), form in forms.items():
        url = path.format(meeting_id=meeting_id)
        accepted = client.post(url, data=form, headers=headers, follow_redirects=False)
        refused = client.post(url, data={**form, field: 2**31}, headers=headers)

        # A meeting's form sent without htmx goes back to the meeting page (303).
        assert accepted.status_code in (200, 303), (path, accepted.text)
        assert refused.status_code == 422, (path, refused.status_code)
        assert "text/html" in refused.headers["content-type"], path


@pytest.mark.parametrize(
    ("field", "value"),
    [("meeting_id", str(2**31)), ("meeting_id", "\u00b2"), ("version", "\u00b2")],
    ids=["meeting-past-integer", "meeting-superscript-two", "version-superscript-two"],
)
def test_the_decision_forms_hidden_numbers_are_checked(
    client: TestClient, admin: Actor, field: str, value: str
) -> None:
    """str.isdigit() passed "²", which int() then refused, and a meeting id past INTEGER
    reached PostgreSQL: 500s."""
    project = factories.create_project(client, admin)
    item = factories.checklist(client, admin, project["id"])[0]
    headers = {"X-CSRF-Token": sign_in(client, admin.email)}
    form = {"status": "decided", "summary": "S", "rationale": "R", "version": "0", field: value}
    response = client.post(f"/items/{item['id']}/decision", data=form, headers=headers)

    assert response.status_code == 422, response.text
    assert "text/html" in response.headers["content-type"]
    decisions = client.get(f"/api/v1/checklist-items/{item['id']}/decisions", headers=admin.headers)
    assert decisions.json()["revisions"] == []


@pytest.mark.parametrize("number", HUGE)
def test_a_version_past_the_integer_columns_is_invalid_input_not_a_conflict(
    client: TestClient, admin: Actor, number: int
) -> None:
    """Both were 409, "based on revision 9223372036854775808", as if someone else had
    written in between."""
    project = factories.create_project(client, admin)
    item = factories.checklist(client, admin, project["id"])[0]
    decision = {"status": "decided", "summary": "s", "rationale": "r", "version": number}

    edited = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": number, "name": "n"},
        headers=admin.headers,
    )
    decided = client.put(
        f"/api/v1/checklist-items/{item['id']}/decision", json=decision, headers=admin.headers
    )

    for response in (edited, decided):
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "version"


def test_the_decision_forms_blank_lines_of_alternatives_are_dropped_not_refused(
    client: TestClient, admin: Actor
) -> None:
    """The API refuses a blank alternative; the form's textarea has one per line, and the
    empty lines between them are not alternatives."""
    project = factories.create_project(client, admin)
    item = factories.checklist(client, admin, project["id"])[0]
    headers = {"X-CSRF-Token": sign_in(client, admin.email)}
    form = {"status": "decided", "summary": "S", "rationale": "R", "version": "0"}
    alternatives = "\n  Poll instead \n\n   \nPush\n"

    response = client.post(
        f"/items/{item['id']}/decision",
        data={**form, "alternatives": alternatives},
        headers=headers,
    )

    assert response.status_code == 200, response.text
    decisions = client.get(f"/api/v1/checklist-items/{item['id']}/decisions", headers=admin.headers)
    assert decisions.json()["revisions"][0]["alternatives"] == ["Poll instead", "Push"]
