"""The meeting API: start, join, the presenter's current item, votes, decisions, minutes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.models.enums import Role
from tests import factories
from tests.conftest import Actor, make_actor


def start(client: TestClient, actor: Actor, project_id: int) -> dict[str, Any]:
    response = client.post(f"/api/v1/projects/{project_id}/meetings", headers=actor.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_presenter_starts_on_the_first_item_and_attends(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    items = factories.checklist(client, member, project["id"])
    meeting = start(client, member, project["id"])
    assert meeting["presenter_id"] == member.user_id
    assert meeting["current_item_id"] == items[0]["id"]
    assert [a["user_id"] for a in meeting["attendees"]] == [member.user_id]
    again = client.post(f"/api/v1/projects/{project['id']}/meetings", headers=member.headers)
    assert again.status_code == 409
    assert again.json()["meeting_id"] == meeting["id"]


def test_only_the_presenter_moves_the_current_item(
    client: TestClient, member: Actor, admin: Actor
) -> None:
    project = factories.create_project(client, member)
    items = factories.checklist(client, member, project["id"])
    meeting = start(client, member, project["id"])
    client.post(f"/api/v1/meetings/{meeting['id']}/join", headers=admin.headers)
    url = f"/api/v1/meetings/{meeting['id']}/current-item"
    refused = client.post(url, json={"item_id": items[2]["id"]}, headers=admin.headers)
    assert refused.status_code == 403
    moved = client.post(url, json={"item_id": items[2]["id"]}, headers=member.headers)
    assert moved.json()["current_item_id"] == items[2]["id"]
    assert moved.json()["covered_item_ids"] == [items[0]["id"], items[2]["id"]]


def test_votes_need_a_proposed_decision_and_a_new_vote_replaces_the_old(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    meeting = start(client, member, project["id"])
    url = f"/api/v1/meetings/{meeting['id']}/votes"
    early = client.post(url, json={"item_id": item["id"], "vote": "agree"}, headers=member.headers)
    assert early.status_code == 409
    factories.decide(client, member, item)
    client.post(url, json={"item_id": item["id"], "vote": "agree"}, headers=member.headers)
    vote = client.post(
        url, json={"item_id": item["id"], "vote": "disagree"}, headers=member.headers
    )
    assert vote.json() == {
        "item_id": item["id"],
        "user_id": member.user_id,
        "name": "Member",
        "vote": "disagree",
        "decision_revision": 1,
    }
    votes = client.get(f"/api/v1/meetings/{meeting['id']}", headers=member.headers).json()["votes"]
    assert [v["vote"] for v in votes] == ["disagree"]


def test_viewers_follow_but_cannot_join_or_vote(
    client: TestClient, member: Actor, viewer: Actor
) -> None:
    project = factories.create_project(client, member)
    meeting = start(client, member, project["id"])
    assert client.get(f"/api/v1/meetings/{meeting['id']}", headers=viewer.headers).is_success
    join = client.post(f"/api/v1/meetings/{meeting['id']}/join", headers=viewer.headers)
    assert join.status_code == 403


def test_a_decision_in_a_meeting_stores_the_attendees(
    client: TestClient, member: Actor, admin: Actor
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    meeting = start(client, member, project["id"])
    client.post(f"/api/v1/meetings/{meeting['id']}/join", headers=admin.headers)
    body = {"status": "decided", "summary": "s", "rationale": "r", "version": 0}
    url = f"/api/v1/meetings/{meeting['id']}/items/{item['id']}/decision"
    response = client.put(url, json=body, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["revision"] == 1
    gate = factories.gate(client, member, project["id"])
    assert gate["decided"] == 1


def test_ending_writes_minutes_with_items_decisions_votes_and_open_items(
    client: TestClient, member: Actor, admin: Actor
) -> None:
    project = factories.create_project(client, member, name="Ledger")
    items = factories.checklist(client, member, project["id"])
    meeting = start(client, member, project["id"])
    meeting_url = f"/api/v1/meetings/{meeting['id']}"
    client.post(f"{meeting_url}/join", headers=admin.headers)
    decision = {"status": "decided", "summary": "Ledger owns balances", "rationale": "One owner"}
    client.put(
        f"{meeting_url}/items/{items[0]['id']}/decision",
        json={**decision, "alternatives": ["Shared table"], "version": 0},
        headers=member.headers,
    )
    client.post(
        f"{meeting_url}/votes",
        json={"item_id": items[0]["id"], "vote": "agree"},
        headers=admin.headers,
    )
    client.post(
        f"{meeting_url}/current-item", json={"item_id": items[1]["id"]}, headers=member.headers
    )
    not_presenter = client.post(f"{meeting_url}/end", headers=admin.headers)
    assert not_presenter.status_code == 200  # an admin may end any meeting
    minutes = not_presenter.json()["minutes"]
    assert minutes.startswith("# Minutes: Ledger")
    for heading in ("## Items covered", "## Decisions", "## Votes", "## Open items"):
        assert heading in minutes
    assert "Data ownership: Who owns each piece of data (decided): Ledger owns balances" in minutes
    assert "Alternatives considered: Shared table" in minutes
    assert "agree 1, disagree 0, abstain 0 (Admin: agree (revision 1))" in minutes
    assert "Downstream degradation: A downstream drops off the network (no decision)" in minutes
    ended = client.post(f"{meeting_url}/join", headers=member.headers)
    assert ended.status_code == 409


def test_a_member_who_did_not_present_cannot_end_the_meeting(
    client: TestClient, member: Actor, db: Any
) -> None:

    other = make_actor(db, Role.MEMBER)
    project = factories.create_project(client, member)
    meeting = start(client, member, project["id"])
    client.post(f"/api/v1/meetings/{meeting['id']}/join", headers=other.headers)
    assert (
        client.post(f"/api/v1/meetings/{meeting['id']}/end", headers=other.headers).status_code
        == 403
    )
