"""Every page form with hostile values: never a 500, and nothing stored that a page cannot show.

The API has Schemathesis (test_schemathesis.py); the pages' forms have no OpenAPI document,
and probing them by hand found 500s that the API did not have: a thread's opening message,
the code-generation instructions, the decision form's hidden numbers, the numbers other
forms send, account text (docs/RELIABILITY.md). Here Hypothesis fills every field of every
form (read from the app, so a new form fails the test until it is listed) with text that
has hurt before, or any text: each example is a form the page would accept with one or two
fields changed (and at times one left out), followed by reading the pages that show what
the forms write.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from app.db import Database
from app.models.enums import Role
from tests import factories
from tests.conftest import Actor, make_actor
from tests.hardening.accumulating import accumulating
from tests.hardening.web_helpers import page_routes, sign_in

EXAMPLES = 40
SOAK_EXAMPLES = 400

PASSWORD = "a long enough password"


def valid_forms(ids: dict[str, Any], other_email: str) -> dict[str, dict[str, str]]:
    """A form each page would accept (or refuse only for the state it finds: the setup is
    done, the password is wrong, a version has moved on); examples change one or two
    fields. The forms that read ``request.form()`` themselves name no fields to FastAPI."""
    project = {"name": "Fuzzed", "problem": "Orders arrive.", "architecture": "A queue."}
    return {
        "/setup": {"email": "first@example.test", "name": "First", "password": PASSWORD},
        "/login": {"email": other_email, "password": "not the password", "next": "/"},
        "/projects": {
            **project,
            "data_model": "",
            "constraints": "",
            "template": "generic-service",
        },
        "/projects/{project_id}/design": {
            **project,
            "version": "1",
            "base_name": "0" * 64,
            "base_architecture": "",
        },
        "/projects/{project_id}/checklist": {
            "category": "recovery",
            "title": "Replay after a restore",
            "question": "How are messages sent twice told apart?",
        },
        "/items/{item_id}/decision": {
            "status": "decided",
            "summary": "One consumer.",
            "rationale": "Ordering.",
            "alternatives": "Two consumers",
            "version": "1",
            "meeting_id": "",
        },
        "/projects/{project_id}/generations": {"instructions": "Use asyncio."},
        "/meetings/{meeting_id}/current-item": {"item_id": str(ids["item_id"])},
        "/meetings/{meeting_id}/votes": {"item_id": str(ids["item_id"]), "vote": "agree"},
        "/projects/{project_id}/threads": {
            "mode": "open",
            "checklist_item_id": "",
            "models": "",
            "opening": "How does it fail?",
        },
        "/threads/{thread_id}/messages": {"content": "And then?", "pushback": "false"},
        "/admin/users": {"email": "", "name": "New", "role": "viewer", "password": PASSWORD},
        "/admin/users/{user_id}/role": {"role": "viewer"},
        "/admin/tokens": {"user_id": str(ids["user_id"]), "label": "CI"},
    }


# Forms with no field, a button alone: most would end the fuzzing's own session or meeting.
NOT_FUZZED = {
    "/logout",
    "/logout/everywhere",
    "/projects/{project_id}/meeting",
    "/meetings/{meeting_id}/join",
    "/meetings/{meeting_id}/end",
    "/admin/tokens/{token_id}/revoke",
    "/admin/users/{user_id}/deactivate",
    "/admin/users/{user_id}/reactivate",
}

HOSTILE = [
    "",
    " ",
    "\x00",
    "A\x00B",
    "x" * 201,
    "x" * 100_001,
    "\u00b2",  # str.isdigit() is true for it, int() refuses it
    "\u0663",  # an Arabic-Indic three: int() takes it
    "-1",
    "0",
    str(2**31),
    str(2**63),
    "1e3",
    "NaN",
    "true",
    "\ufffd",
    "\u202e",
    "<script>alert(1)</script>",
    "\r\n",
    "1,2",
    "open",
    "decided",
    "agree",
    "admin",
    "generic-service",
]
# Mostly what has hurt before; any text a quarter of the time.
VALUES = st.one_of(*[st.sampled_from(HOSTILE)] * 3, st.text(max_size=40))
# What the forms write is shown on these (with the ids filled in).
PAGES = (
    "/",
    "/projects/{project_id}",
    "/items/{item_id}",
    "/threads/{thread_id}",
    "/projects/{project_id}/meeting",
    "/admin/users",
    "/admin/tokens",
)


def fuzzing_world(client: TestClient, admin: Actor, other: Actor) -> dict[str, Any]:
    """A project with a decided item, a thread and a meeting the admin presents."""
    project = factories.create_project(client, admin)
    item = factories.checklist(client, admin, project["id"])[0]
    factories.decide(client, admin, item)
    thread = client.post(
        f"/api/v1/projects/{project['id']}/threads",
        json={"mode": "open", "title": "Fuzzed"},
        headers=admin.headers,
    ).json()
    meeting = client.post(f"/api/v1/projects/{project['id']}/meetings", headers=admin.headers)
    client.post(f"/api/v1/meetings/{meeting.json()['id']}/join", headers=admin.headers)
    return {
        "project_id": project["id"],
        "item_id": item["id"],
        "thread_id": thread["id"],
        "meeting_id": meeting.json()["id"],
        "user_id": other.user_id,
    }


def fuzz_forms(app: FastAPI, client: TestClient, db: Database, admin: Actor, examples: int) -> None:
    other = make_actor(db, Role.MEMBER)
    ids = fuzzing_world(client, admin, other)
    forms = valid_forms(ids, other.email)
    assert set(forms) | NOT_FUZZED == set(page_routes(app, "POST")), (
        "a form is neither fuzzed nor excused"
    )
    headers = {"X-CSRF-Token": sign_in(client, admin.email)}
    pages = [page.format(**ids) for page in PAGES]

    for form, valid in forms.items():
        _fuzz_form(client, form.format(**ids), valid, headers, pages, examples)
        # Still signed in as the admin (a sign-in form could have ended the session, and
        # every later form would only have been redirected to the sign-in page).
        still = client.get("/admin/users", follow_redirects=False)
        assert still.status_code == 200, f"after {form}: {still.status_code}"


def _fuzz_form(
    client: TestClient,
    url: str,
    valid: dict[str, str],
    headers: dict[str, str],
    pages: list[str],
    examples: int,
) -> None:
    fields = sorted(valid)
    emails = itertools.count(1)

    @given(
        changed=st.dictionaries(st.sampled_from(fields), VALUES, min_size=1, max_size=2),
        dropped=st.sets(st.sampled_from(fields), max_size=1),
        htmx=st.booleans(),
    )
    @accumulating(examples)
    def check(changed: dict[str, str], dropped: set[str], htmx: bool) -> None:
        form = (
            {**valid, "email": f"new-{next(emails)}@example.test"}
            if url == "/admin/users"
            else valid
        )
        values = {k: v for k, v in {**form, **changed}.items() if k not in dropped - set(changed)}
        sent = {**headers, **({"HX-Request": "true"} if htmx else {})}
        response = client.post(url, data=values, headers=sent, follow_redirects=False)
        said = f"{url} {values!r}: {response.status_code}"
        # 503: a form that needs the model, which this app has none of.
        assert response.status_code < 500 or response.status_code == 503, said
        for page in pages:
            shown = client.get(page, follow_redirects=False)
            assert shown.status_code < 500, f"{said}, then {page}: {shown.status_code}"

    check()


def test_every_page_form_answers_hostile_values_without_a_server_error(
    app: FastAPI, client: TestClient, db: Database, admin: Actor
) -> None:
    fuzz_forms(app, client, db, admin, EXAMPLES)


@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_every_page_form_answers_hostile_values_without_a_server_error_at_length(
    app: FastAPI, client: TestClient, db: Database, admin: Actor
) -> None:
    fuzz_forms(app, client, db, admin, SOAK_EXAMPLES)
