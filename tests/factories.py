"""Helpers that build test data through the public API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Actor

ARCHITECTURE = "A consumer reads orders from RabbitMQ and writes them to PostgreSQL."
DATA_MODEL = "orders(id uuid primary key, customer_id, total_cents, received_at)"


def create_project(client: TestClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Order intake",
        "problem": "Orders arrive on a queue and must be stored exactly once.",
        "architecture": ARCHITECTURE,
        "data_model": DATA_MODEL,
        **fields,
    }
    response = client.post("/api/v1/projects", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def checklist(client: TestClient, actor: Actor, project_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/projects/{project_id}/checklist", headers=actor.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def decide(client: TestClient, actor: Actor, item: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Record (or supersede) the item's decision, based on its current revision."""
    current = item.get("decision")
    body = {
        "status": "decided",
        "summary": f"Decision for {item['title']}",
        "rationale": f"Because {item['category']} matters here.",
        "alternatives": [f"Ignore {item['category']}"],
        "version": current["version"] if current else 0,
        **fields,
    }
    response = client.put(
        f"/api/v1/checklist-items/{item['id']}/decision", json=body, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def decide_all(client: TestClient, actor: Actor, project_id: int) -> list[dict[str, Any]]:
    return [decide(client, actor, item) for item in checklist(client, actor, project_id)]


def gate(client: TestClient, actor: Actor, project_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/projects/{project_id}/gate", headers=actor.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
