"""Small API helpers for debate tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.db import Database, utcnow
from app.models import Draft, Generation, Message
from tests.conftest import Actor


def start_thread(
    client: TestClient, actor: Actor, project_id: int, mode: str, **fields: Any
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/projects/{project_id}/threads",
        json={"mode": mode, **fields},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def say(
    client: TestClient, actor: Actor, thread_id: int, content: str, *, pushback: bool = False
) -> dict[str, Any]:
    """Post a message; the test client has run the replies (and judge) when this returns."""
    response = client.post(
        f"/api/v1/threads/{thread_id}/messages",
        json={"content": content, "pushback": pushback},
        headers=actor.headers,
    )
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def thread(client: TestClient, actor: Actor, thread_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/threads/{thread_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def replies(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in view["messages"] if m["role"] == "assistant"]


def last_reply(client: TestClient, actor: Actor, thread_id: int) -> dict[str, Any]:
    return replies(thread(client, actor, thread_id))[-1]


def models_view(client: TestClient, actor: Actor, project_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/projects/{project_id}/models", headers=actor.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def item_in(client: TestClient, actor: Actor, project_id: int, category: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/projects/{project_id}/checklist", headers=actor.headers)
    assert response.status_code == 200, response.text
    return next(i for i in response.json() if i["category"] == category)


def add_streaming_reply(
    db: Database, thread_id: int, runner: int, content: str, *, model: str, turn: int = 1
) -> int:
    """A reply stored as the server process ``runner`` left it, mid-stream."""
    with db.transaction() as session:
        reply = Message(
            thread_id=thread_id,
            turn=turn,
            role="assistant",
            status="streaming",
            model=model,
            content=content,
            updated_at=utcnow(),
            runner=runner,
        )
        session.add(reply)
        session.flush()
        return reply.id


def add_streaming_generation(
    db: Database, project_id: int, runner: int, content: str, *, model: str
) -> int:
    """A generation stored as the server process ``runner`` left it, mid-stream."""
    with db.transaction() as session:
        generation = Generation(
            project_id=project_id, status="streaming", runner=runner, model=model, content=content
        )
        session.add(generation)
        session.flush()
        return generation.id


def add_waiting_draft(db: Database, runner: int) -> int:
    """A draft left waiting for the model by the server process ``runner``."""
    with db.transaction() as session:
        draft = Draft(
            request="A consumer",
            name="Consumer",
            problem="p",
            template="generic-service",
            status="pending",
            runner=runner,
        )
        session.add(draft)
        session.flush()
        return draft.id
