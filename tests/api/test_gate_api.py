"""The gate through the API: refusal with the reasons, staleness after design edits, opening."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.models.enums import Category
from app.services import users
from tests import factories
from tests.api.asserts import assert_problem, gate_items
from tests.conftest import Actor


def _generate(client: TestClient, actor: Actor, project_id: int) -> Any:
    return client.post(f"/api/v1/projects/{project_id}/generations", json={}, headers=actor.headers)


def _patch(
    client: TestClient, actor: Actor, project: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    response = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], **fields},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_new_project_has_an_item_with_a_question_in_every_category(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    items = factories.checklist(client, member, project["id"])
    assert {i["category"] for i in items} == {c.value for c in Category}
    assert all(i["question"].strip() and i["decision"] is None for i in items)
    assert project["gate"] == {
        "open": False,
        "decided": 0,
        "total": len(items),
        "missing_count": len(items),
        "stale_count": 0,
    }


def test_generation_is_refused_with_every_missing_item_while_nothing_is_decided(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    items = factories.checklist(client, member, project["id"])
    body = assert_problem(_generate(client, member, project["id"]), 409)
    assert gate_items(body["missing"]) == gate_items(items)
    assert body["stale"] == []
    gate = factories.gate(client, member, project["id"])
    assert (gate["missing"], gate["stale"]) == (body["missing"], body["stale"])


def test_generation_is_refused_listing_only_the_items_still_missing(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    items = factories.checklist(client, member, project["id"])
    for item in items[:-2]:
        factories.decide(client, member, item)
    body = assert_problem(_generate(client, member, project["id"]), 409)
    assert gate_items(body["missing"]) == gate_items(items[-2:])
    assert "2 item(s) have no decision" in body["detail"]


def test_the_gate_opens_after_the_last_decision(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    items = factories.checklist(client, member, project["id"])
    for item in items[:-1]:
        factories.decide(client, member, item)
    assert factories.gate(client, member, project["id"])["open"] is False
    factories.decide(client, member, items[-1])
    gate = factories.gate(client, member, project["id"])
    assert gate == {
        "open": True,
        "missing": [],
        "stale": [],
        "decided": len(items),
        "total": len(items),
    }
    # No model is configured here: past the gate, the refusal is about the model, not the gate.
    assert_problem(_generate(client, member, project["id"]), 503)


@pytest.mark.parametrize("field", ["problem", "architecture", "data_model"])
def test_editing_a_design_field_makes_every_decision_stale_and_refuses_generation(
    client: TestClient, member: Actor, project: dict[str, Any], field: str
) -> None:
    factories.decide_all(client, member, project["id"])
    edited = _patch(client, member, project, **{field: "Something else entirely"})
    assert edited["design_version"] == project["design_version"] + 1
    assert edited["gate"]["stale_count"] == edited["gate"]["total"]
    items = factories.checklist(client, member, project["id"])
    assert all(i["state"] == "stale" and i["decision"]["stale"] for i in items)
    body = assert_problem(_generate(client, member, project["id"]), 409)
    assert body["missing"] == []
    assert gate_items(body["stale"]) == gate_items(items)


@pytest.mark.parametrize(
    "fields", [{"name": "Renamed"}, {"constraints": "Python 3.12, PostgreSQL 17"}]
)
def test_editing_name_or_constraints_leaves_decisions_current(
    client: TestClient, member: Actor, project: dict[str, Any], fields: dict[str, str]
) -> None:
    factories.decide_all(client, member, project["id"])
    edited = _patch(client, member, project, **fields)
    assert edited["version"] == project["version"] + 1
    assert edited["design_version"] == project["design_version"]
    assert factories.gate(client, member, project["id"])["open"] is True


def test_saving_a_design_field_unchanged_does_not_make_decisions_stale(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    factories.decide_all(client, member, project["id"])
    edited = _patch(client, member, project, architecture=project["architecture"])
    assert edited["design_version"] == project["design_version"]
    assert factories.gate(client, member, project["id"])["open"] is True


def test_recording_a_stale_decision_again_clears_it(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    factories.decide_all(client, member, project["id"])
    _patch(client, member, project, data_model="events(id, payload jsonb)")
    stale_items = factories.checklist(client, member, project["id"])
    redone = factories.decide(client, member, stale_items[0])
    assert (redone["stale"], redone["revision"]) == (False, 2)
    gate = factories.gate(client, member, project["id"])
    assert gate_items(gate["stale"]) == gate_items(stale_items[1:])
    for item in stale_items[1:]:
        factories.decide(client, member, item)
    assert factories.gate(client, member, project["id"])["open"] is True


def test_a_custom_item_closes_an_open_gate_until_it_is_decided(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    factories.decide_all(client, member, project["id"])
    response = client.post(
        f"/api/v1/projects/{project['id']}/checklist",
        json={"category": "load", "title": "Nightly import", "question": "How large?"},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    added = response.json()
    assert (added["custom"], added["decision"], added["state"]) == (True, None, "open")
    body = assert_problem(_generate(client, member, project["id"]), 409)
    assert gate_items(body["missing"]) == [(added["id"], "load", "Nightly import")]
    factories.decide(client, member, added)
    assert factories.gate(client, member, project["id"])["open"] is True


@pytest.mark.parametrize("status", ["accepted_risk", "not_applicable"])
def test_accepted_risk_and_not_applicable_open_the_gate(
    client: TestClient, member: Actor, project: dict[str, Any], status: str
) -> None:
    for item in factories.checklist(client, member, project["id"]):
        factories.decide(client, member, item, status=status)
    assert factories.gate(client, member, project["id"])["open"] is True


def test_the_gate_of_an_unknown_project_is_a_404_problem(client: TestClient, member: Actor) -> None:
    response = client.get("/api/v1/projects/987654/gate", headers=member.headers)
    assert assert_problem(response, 404)["detail"] == "Project 987654 does not exist"


@pytest.mark.parametrize("authorization", [None, "Bearer dg_not-a-token", "Basic abc"])
def test_the_gate_check_needs_a_live_api_token(
    client: TestClient, project: dict[str, Any], authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(f"/api/v1/projects/{project['id']}/gate", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("project_id", ["987654", "0"])
def test_without_a_token_the_gate_check_is_401_whatever_the_project(
    client: TestClient, project_id: str
) -> None:
    # Authentication comes first: without a token nothing says which projects exist or
    # which ids are valid.
    assert_problem(client.get(f"/api/v1/projects/{project_id}/gate"), 401)


def test_viewers_read_the_gate(
    client: TestClient, viewer: Actor, member: Actor, project: dict[str, Any]
) -> None:
    response = client.get(f"/api/v1/projects/{project['id']}/gate", headers=viewer.headers)
    assert response.status_code == 200
    assert (
        response.json()
        == client.get(f"/api/v1/projects/{project['id']}/gate", headers=member.headers).json()
    )


def test_the_gate_check_refuses_a_token_the_moment_it_is_revoked(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    path = f"/api/v1/projects/{project['id']}/gate"
    assert client.get(path, headers=member.headers).status_code == 200
    [token] = client.get("/api/v1/tokens", headers=member.headers).json()
    assert client.delete(f"/api/v1/tokens/{token['id']}", headers=member.headers).status_code == 204
    assert_problem(client.get(path, headers=member.headers), 401)


def test_the_gate_check_refuses_the_token_of_a_deactivated_user(
    client: TestClient, db: Database, member: Actor, project: dict[str, Any]
) -> None:
    path = f"/api/v1/projects/{project['id']}/gate"
    assert client.get(path, headers=member.headers).status_code == 200
    with db.transaction() as session:
        users.get_by_email(session, member.email).is_active = False
    assert_problem(client.get(path, headers=member.headers), 401)
