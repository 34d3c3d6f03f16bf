"""The REST contract for projects and checklists: paths, codes and the fields issue 2 fixes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor


def test_create_returns_201_with_id_and_version_and_the_project_is_listed_and_readable(
    client: TestClient, member: Actor, viewer: Actor
) -> None:
    body = {"name": "Billing", "problem": "Invoices must be sent once."}
    created = client.post("/api/v1/projects", json=body, headers=member.headers)
    assert created.status_code == 201
    project = created.json()
    assert (project["version"], project["architecture"], project["data_model"]) == (1, "", "")
    assert project["blind_first"] is True
    listed = client.get("/api/v1/projects", headers=viewer.headers)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == [project["id"]]
    read = client.get(f"/api/v1/projects/{project['id']}", headers=viewer.headers).json()
    assert {k: read[k] for k in body} == body
    assert read["gate"]["open"] is False


def test_checklist_items_carry_the_contract_fields(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    items = factories.checklist(client, member, project["id"])
    assert len(items) >= 6
    for item in items:
        assert {"id", "category", "title", "question", "decision"} <= item.keys()
    decided = factories.decide(client, member, items[0], alternatives=["Poll instead"])
    assert {
        "status",
        "summary",
        "rationale",
        "alternatives",
        "revision",
        "decided_by",
        "decided_at",
        "stale",
    } <= decided.keys()
    again = factories.checklist(client, member, project["id"])[0]["decision"]
    assert again == decided


def test_an_edit_returns_the_new_version_and_keeps_unsent_fields(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    response = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], "constraints": "Go 1.23"},
        headers=member.headers,
    )
    assert response.status_code == 200
    edited = response.json()
    assert (edited["version"], edited["constraints"]) == (2, "Go 1.23")
    assert edited["architecture"] == project["architecture"]
    assert edited["problem"] == project["problem"]


def test_an_edit_that_changes_nothing_keeps_the_version(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    response = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], "name": project["name"]},
        headers=member.headers,
    )
    assert response.status_code == 200
    assert response.json()["version"] == project["version"]
