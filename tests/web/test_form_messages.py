"""The forms' own words for a field that breaks a limit: the limit itself, so the user
knows how much to cut."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.schemas.common import MAX_TEXT
from tests import factories
from tests.conftest import Actor
from tests.hardening.web_helpers import sign_in


def test_a_name_past_its_limit_says_the_limit(client: TestClient, member: Actor) -> None:
    token = sign_in(client, member.email)
    form = {"name": "n" * 201, "problem": "p", "csrf_token": token}
    response = client.post("/projects", data=form)

    assert response.status_code == 422
    assert "This is too long: at most 200 characters." in response.text


def test_a_text_past_its_limit_says_the_limit_in_digits_people_read(
    client: TestClient, member: Actor
) -> None:
    token = sign_in(client, member.email)
    form = {"name": "Ledger", "problem": "p" * (MAX_TEXT + 1), "csrf_token": token}
    response = client.post("/projects", data=form)

    assert response.status_code == 422
    assert "This is too long: at most 100,000 characters." in response.text


def test_too_many_alternatives_say_how_many_are_allowed(client: TestClient, member: Actor) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    form = {
        "status": "decided",
        "summary": "s",
        "rationale": "r",
        "alternatives": "\n".join(f"option {n}" for n in range(51)),
        "csrf_token": token,
    }
    response = client.post(f"/items/{item['id']}/decision", data=form)

    assert response.status_code == 422
    assert "There are too many entries: at most 50." in response.text
