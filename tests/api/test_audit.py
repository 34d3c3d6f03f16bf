"""Every write that matters leaves who, what, when, before and after; decisions keep history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor


def _events(client: TestClient, actor: Actor, project_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/projects/{project_id}/audit", headers=actor.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def _only(events: list[dict[str, Any]], action: str) -> dict[str, Any]:
    found = [e for e in events if e["action"] == action]
    assert len(found) == 1, [e["action"] for e in events]
    return found[0]


def test_creating_a_project_is_audited_with_its_creator_and_state(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    event = _only(_events(client, member, project["id"]), "project.created")
    assert (event["actor_id"], event["entity_type"]) == (member.user_id, "project")
    assert event["entity_id"] == project["id"]
    assert event["before"] is None
    assert event["after"]["name"] == project["name"]
    assert event["after"]["architecture"] == project["architecture"]
    assert datetime.fromisoformat(event["created_at"]).tzinfo is not None


def test_an_edit_is_audited_with_the_changed_fields_before_and_after(
    client: TestClient, member: Actor, admin: Actor, project: dict[str, Any]
) -> None:
    response = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], "name": "Renamed", "problem": project["problem"]},
        headers=admin.headers,
    )
    assert response.status_code == 200
    event = _only(_events(client, member, project["id"]), "project.updated")
    assert event["actor_id"] == admin.user_id
    assert event["before"] == {"name": project["name"]}
    assert event["after"] == {"name": "Renamed"}


def test_adding_an_item_is_audited(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    body = {"category": "recovery", "title": "Backfill", "question": "How do we backfill?"}
    item = client.post(
        f"/api/v1/projects/{project['id']}/checklist", json=body, headers=member.headers
    ).json()
    event = _only(_events(client, member, project["id"]), "checklist_item.created")
    assert (event["actor_id"], event["entity_id"]) == (member.user_id, item["id"])
    assert event["after"] == body


def test_each_decision_revision_is_audited_with_the_one_it_replaced(
    client: TestClient, member: Actor, admin: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    first = factories.decide(client, member, item, summary="Keep it")
    item["decision"] = first
    second = factories.decide(client, admin, item, summary="Change it", status="accepted_risk")
    events = [
        e for e in _events(client, member, project["id"]) if e["action"] == "decision.recorded"
    ]
    newest, oldest = events
    assert (oldest["actor_id"], oldest["entity_id"]) == (member.user_id, first["id"])
    assert oldest["before"] is None
    assert oldest["after"]["summary"] == "Keep it"
    assert (newest["actor_id"], newest["entity_id"]) == (admin.user_id, second["id"])
    assert newest["before"]["summary"] == "Keep it"
    assert newest["after"] == {
        "revision": 2,
        "status": "accepted_risk",
        "summary": "Change it",
        "rationale": second["rationale"],
        "alternatives": second["alternatives"],
        "design_version": project["design_version"],
    }


def test_a_refused_write_leaves_no_audit_event(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    before = _events(client, member, project["id"])
    stale = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"] + 5, "name": "Nope"},
        headers=member.headers,
    )
    assert stale.status_code == 409
    assert _events(client, member, project["id"]) == before


def test_decision_history_lists_every_revision_newest_first(
    client: TestClient, member: Actor, admin: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    for number, actor in enumerate([member, admin, member], start=1):
        item["decision"] = factories.decide(
            client, actor, item, summary=f"Take {number}", alternatives=[f"Not {number}"]
        )
    response = client.get(f"/api/v1/checklist-items/{item['id']}/decisions", headers=admin.headers)
    assert response.status_code == 200
    history = response.json()
    assert history["item_id"] == item["id"]
    revisions = history["revisions"]
    assert [r["revision"] for r in revisions] == [3, 2, 1]
    assert [r["summary"] for r in revisions] == ["Take 3", "Take 2", "Take 1"]
    assert [r["alternatives"] for r in revisions] == [["Not 3"], ["Not 2"], ["Not 1"]]
    assert [r["decided_by"]["id"] for r in revisions] == [
        member.user_id,
        admin.user_id,
        member.user_id,
    ]


def test_history_marks_revisions_made_before_a_design_edit_as_stale(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    item["decision"] = factories.decide(client, member, item)
    client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], "problem": "A new problem"},
        headers=member.headers,
    )
    factories.decide(client, member, item)
    revisions = client.get(
        f"/api/v1/checklist-items/{item['id']}/decisions", headers=member.headers
    ).json()["revisions"]
    assert [(r["revision"], r["stale"]) for r in revisions] == [(2, False), (1, True)]


def test_a_decision_records_who_and_when(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    decision = factories.decide(client, member, item, alternatives=["A", "B"])
    assert decision["decided_by"] == {"id": member.user_id, "name": "Member", "email": member.email}
    assert datetime.fromisoformat(decision["decided_at"]).tzinfo is not None
    assert decision["alternatives"] == ["A", "B"]
    assert (decision["status"], decision["revision"], decision["stale"]) == ("decided", 1, False)
