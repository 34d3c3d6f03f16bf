"""Rows the debates and meetings features store, written directly for backup tests."""

from __future__ import annotations

from datetime import UTC, datetime

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
                based_on=[
                    {"decision_id": d.id, "item_id": d.item_id, "revision": d.revision}
                    for d in decisions
                ],
                created_by_id=people[0].user_id,
                created_at=WHEN,
                completed_at=WHEN,
            )
        )
