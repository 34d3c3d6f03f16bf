"""Optimistic concurrency: a write based on anything but the current version gets 409."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests import factories
from tests.api.asserts import assert_problem
from tests.conftest import Actor


def _put_decision(client: TestClient, actor: Actor, item_id: int, **fields: Any) -> Any:
    body = {"status": "decided", "summary": "Use a queue", "rationale": "Absorbs spikes", **fields}
    return client.put(
        f"/api/v1/checklist-items/{item_id}/decision", json=body, headers=actor.headers
    )


def test_a_project_edit_based_on_a_stale_version_is_refused_and_changes_nothing(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    url = f"/api/v1/projects/{project['id']}"
    first = client.patch(url, json={"version": 1, "name": "First"}, headers=member.headers)
    assert first.status_code == 200
    second = client.patch(url, json={"version": 1, "name": "Second"}, headers=member.headers)
    body = assert_problem(second, 409)
    assert body["current"]["version"] == 2
    assert body["current"]["name"] == "First"
    assert client.get(url, headers=member.headers).json()["name"] == "First"


def test_a_project_edit_based_on_a_future_version_is_refused(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    response = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"] + 1, "problem": "Later"},
        headers=member.headers,
    )
    assert_problem(response, 409)


def test_a_decision_based_on_a_stale_revision_is_refused_and_history_keeps_both_writers(
    client: TestClient, member: Actor, admin: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    assert _put_decision(client, member, item["id"], version=0).status_code == 200
    assert _put_decision(client, admin, item["id"], version=1, summary="B").status_code == 200
    late = _put_decision(client, member, item["id"], version=1, summary="C")
    body = assert_problem(late, 409)
    assert body["current_revision"] == 2
    history = client.get(
        f"/api/v1/checklist-items/{item['id']}/decisions", headers=member.headers
    ).json()
    assert [r["summary"] for r in history["revisions"]] == ["B", "Use a queue"]


def test_a_first_decision_based_on_a_revision_that_does_not_exist_is_refused(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    assert_problem(_put_decision(client, member, item["id"], version=3), 409)


def test_superseding_a_decision_without_a_version_is_refused(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    first = _put_decision(client, member, item["id"])
    assert first.status_code == 200
    assert first.json()["revision"] == 1
    body = assert_problem(_put_decision(client, member, item["id"], summary="Again"), 409)
    assert body["current_revision"] == 1
    assert _put_decision(client, member, item["id"], version=1).json()["revision"] == 2
