"""A body whose every field is optional may be left out: no body reads as `{}`."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Actor


def _draft(client: TestClient, actor: Actor) -> dict[str, Any]:
    body = {"request": "a service that stores orders from a queue"}
    response = client.post("/api/v1/drafts", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    draft: dict[str, Any] = response.json()
    return draft


def test_a_draft_is_edited_without_a_body_as_with_an_empty_one(
    client: TestClient, member: Actor
) -> None:
    draft = _draft(client, member)

    response = client.patch(f"/api/v1/drafts/{draft['id']}", headers=member.headers)

    assert response.status_code == 200, response.text
    assert response.json()["template"] == draft["template"]


def test_a_drafts_project_is_made_without_a_body_with_the_defaults(
    client: TestClient, member: Actor
) -> None:
    draft = _draft(client, member)

    response = client.post(f"/api/v1/drafts/{draft['id']}/project", headers=member.headers)

    assert response.status_code == 201, response.text
    assert response.json()["blind_first"] is True
    assert response.json()["architecture"] == ""


def test_a_proposal_is_edited_without_a_body_as_with_an_empty_one(
    client: TestClient, member: Actor
) -> None:
    draft = _draft(client, member)
    own = {"category": "load", "title": "Bursts", "question": "What queues up?"}
    added = client.post(
        f"/api/v1/drafts/{draft['id']}/proposals", json=own, headers=member.headers
    ).json()
    [proposal] = added["proposals"]

    response = client.patch(
        f"/api/v1/drafts/{draft['id']}/proposals/{proposal['id']}", headers=member.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["proposals"] == [proposal]


def test_the_openapi_document_says_these_bodies_are_optional(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/api/v1/drafts/{draft_id}", "patch"),
        ("/api/v1/drafts/{draft_id}/project", "post"),
        ("/api/v1/drafts/{draft_id}/proposals/{proposal_id}", "patch"),
    ]:
        assert not paths[path][method]["requestBody"].get("required"), (method, path)
