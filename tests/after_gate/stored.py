"""Rows the debates and meetings features store, written directly for backup tests, and an
instance with a row in every table a backup carries."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.db import Database
from app.models import (
    ChecklistItem,
    Decision,
    Generation,
    Meeting,
    MeetingAttendee,
    MeetingVote,
    Message,
    Thread,
)
from tests.after_gate.reviewed import reviewed_project
from tests.conftest import Actor

WHEN = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def add_debate_meeting_and_generation(db: Database, project_id: int, *people: Actor) -> None:
    """A thread with a flagged, judged reply, a meeting with votes, and a generation."""
    with db.transaction() as session:
        items = list(
            session.scalars(
                select(ChecklistItem)
                .where(ChecklistItem.project_id == project_id)
                .order_by(ChecklistItem.position)
            )
        )
        thread = Thread(
            project_id=project_id,
            checklist_item_id=items[0].id,
            mode="challenge",
            models=["openai/a", "openai/b"],
            title="Who owns orders?",
            created_by_id=people[0].user_id,
            created_at=WHEN,
        )
        session.add(thread)
        session.flush()
        question = Message(
            thread_id=thread.id,
            turn=1,
            role="user",
            content="The consumer owns the order, surely?",
            status="complete",
            author_id=people[0].user_id,
            pushback=True,
            created_at=WHEN,
            updated_at=WHEN,
        )
        session.add(question)
        session.flush()
        session.add(
            Message(
                thread_id=thread.id,
                turn=2,
                role="assistant",
                content="You are right, the consumer owns it.",
                status="interrupted",
                model="openai/a",
                requested_model="openai/primary",
                attempts=[{"model": "openai/primary", "kind": "unavailable"}],
                reply_to_id=question.id,
                error="Interrupted: the server stopped",
                error_kind="interrupted",
                flags=["capitulated"],
                prompt=[{"role": "system", "content": "Argue."}, {"role": "user", "content": "?"}],
                judgement={"new_argument": False, "reason": "no new argument", "score": 0.25},
                tokens_in=120,
                tokens_out=45,
                cost=0.00123,
                first_token_ms=310,
                latency_ms=2200,
                created_at=WHEN,
                updated_at=WHEN,
            )
        )
        meeting = Meeting(
            project_id=project_id,
            presenter_id=people[0].user_id,
            current_item_id=items[1].id,
            covered_item_ids=[items[0].id, items[1].id],
            started_at=WHEN,
            ended_at=WHEN,
            minutes="We agreed on reconnecting with backoff.",
        )
        session.add(meeting)
        session.flush()
        for person in people:
            session.add(
                MeetingAttendee(
                    meeting_id=meeting.id,
                    user_id=person.user_id,
                    joined_at=WHEN,
                    last_seen_at=WHEN,
                    left_at=WHEN,
                )
            )
            session.add(
                MeetingVote(
                    meeting_id=meeting.id,
                    item_id=items[1].id,
                    user_id=person.user_id,
                    vote="agree",
                    decision_revision=1,
                    created_at=WHEN,
                )
            )
        current = session.scalar(
            select(Decision)
            .where(Decision.item_id == items[1].id)
            .order_by(Decision.revision.desc())
        )
        assert current is not None
        session.execute(
            update(Decision)
            .where(Decision.id == current.id)
            .values(
                meeting_id=meeting.id,
                attendees=[{"user_id": p.user_id, "name": p.role.title()} for p in people],
            )
        )
        decisions = session.scalars(
            select(Decision).join(ChecklistItem).where(ChecklistItem.project_id == project_id)
        )
        session.add(
            Generation(
                project_id=project_id,
                status="complete",
                model="openai/a",
                instructions="Use Node.js",
                content="console.log('orders')\n",
                prompt=[{"role": "user", "content": "Write it."}],
                attempts=[{"model": "openai/b", "kind": "empty", "reason": "no text"}],
                tokens_in=900,
                tokens_out=310,
                cost=0.0123,
                based_on=[
                    {"decision_id": d.id, "item_id": d.item_id, "revision": d.revision}
                    for d in decisions
                ],
                created_by_id=people[0].user_id,
                created_at=WHEN,
                completed_at=WHEN,
            )
        )


def populated(client: TestClient, db: Database, member: Actor, admin: Actor) -> int:
    """A reviewed project with a debate, a meeting and a generation, a team template and
    a draft made into a project: a row in every table a backup carries."""
    reviewed = reviewed_project(client, member)
    project_id = int(reviewed.project["id"])
    add_debate_meeting_and_generation(db, project_id, member, admin)
    template = {
        "key": "team-consumer",
        "name": "Our consumers",
        "items": [
            {"category": c, "title": f"{c} item", "question": f"What about {c}?"}
            for c in (
                "data_ownership",
                "degradation",
                "load",
                "resilience",
                "mitigation",
                "recovery",
            )
        ],
    }
    created = client.post("/api/v1/templates", json=template, headers=member.headers)
    assert created.status_code == 201, created.text
    add_draft_made_into_a_project(client, member)
    return project_id


def add_draft_made_into_a_project(client: TestClient, member: Actor) -> None:
    draft = client.post("/api/v1/drafts", json={"request": "a cron job"}, headers=member.headers)
    assert draft.status_code == 201, draft.text
    own = {"category": "load", "title": "Overlapping runs", "question": "Can two runs overlap?"}
    url = f"/api/v1/drafts/{draft.json()['id']}"
    assert client.post(f"{url}/proposals", json=own, headers=member.headers).status_code == 201
    assert client.post(f"{url}/project", json={}, headers=member.headers).status_code == 201
