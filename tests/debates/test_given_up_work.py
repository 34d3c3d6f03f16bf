"""A server process whose work another one gave up, taking it for gone, comes back.

A process cut off from PostgreSQL for longer than the sweep's grace period (or one a new
server took for gone at start-up) may still be running: its model call ends and it goes to
store the outcome. What the other process marked, and announced, stands: the returning
process neither flips a reply or generation back to complete nor writes the model's late
proposals over a draft its people may have edited; the text it has is kept, so nothing the
model wrote is lost. On SQLite a process's work is given up only at the next start, but the
same store functions run there too, so these tests run on both databases.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app import db as app_db
from app import live, runners
from app.config import Settings
from app.db import Database
from app.models.enums import GenerationStatus, MessageStatus
from app.services import drafts, generation, recovery, templates
from app.services.debate_events import UNSAVED
from app.services.model_calls import CallTrace
from app.services.recovery import Marked
from app.services.replies import ReplyJob, ReplyWriter
from tests import factories
from tests.conftest import Actor, run_coroutine
from tests.debates.conftest import MODEL
from tests.debates.helpers import (
    add_streaming_generation,
    add_streaming_reply,
    add_waiting_draft,
    replies,
    start_thread,
    thread,
)

STORED, LATE = "half a rep", "ly, with the rest of it."


def give_up(db: Database, runner: int) -> Marked:
    """What another server process does to the work of a runner it takes for gone."""
    with db.transaction() as session:
        return recovery.mark_left_behind(session, only={runner})


def test_a_reply_given_up_keeps_its_status_and_gets_the_text_its_process_still_had(
    client: TestClient, member: Actor, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")["id"]
    runner = runners.new_runner()
    reply_id = add_streaming_reply(db, blind, runner, STORED, model=MODEL)
    job = ReplyJob(
        reply_id=reply_id, thread_id=blind, model=MODEL, prompt=[], answers_pushback=False
    )
    hub = live.hub_for(db.writer)
    assert hub is not None

    async def come_back_after_being_given_up() -> list[live.Event]:
        async with hub.subscribe(f"thread:{blind}") as subscription:
            writer = ReplyWriter(db, job)
            writer.add(STORED)
            writer.saved_length = len(STORED)  # as its last progress save left it
            assert await asyncio.to_thread(give_up, db, runner) == Marked(replies=1)
            writer.add(LATE)
            await writer.finish(MessageStatus.COMPLETE, CallTrace(), None)
            return await _events_until_stored(subscription)

    with caplog.at_level("WARNING"):
        events = run_coroutine(come_back_after_being_given_up())

    stored = next(r for r in replies(thread(client, member, blind)) if r["id"] == reply_id)
    assert (stored["status"], stored["error_kind"], stored["content"]) == (
        "interrupted",
        "interrupted",
        STORED + LATE,
    )
    assert events[-1] == {
        "type": "delta",
        "id": reply_id,
        "status": "interrupted",
        "offset": len(STORED),
        "delta": LATE,
        "length": len(STORED + LATE),
        "error": stored["error"],
        "error_kind": "interrupted",
    }
    assert f"reply {reply_id} was marked interrupted by another server process" in caplog.text


async def _events_until_stored(subscription: live.Subscription) -> list[live.Event]:
    """The thread's events up to the returning process's stored (saved) delta."""
    events: list[live.Event] = []
    while True:
        event = await subscription.get(timeout=5)
        assert event is not None, f"no stored delta came; got {events}"
        events.append(event)
        if event["type"] == "delta" and not event.get(UNSAVED):
            return events


def test_a_generation_given_up_keeps_its_status_and_gets_the_text_its_process_still_had(
    client: TestClient, member: Actor, db: Database
) -> None:
    project = factories.create_project(client, member)
    runner = runners.new_runner()
    started = add_streaming_generation(db, project["id"], runner, STORED, model=MODEL)
    assert give_up(db, runner) == Marked(generations=1)

    # The process's progress save and its final save, as they run when its call returns.
    generation._save_progress(db, started, STORED + LATE[:4], len(STORED))
    kept = client.get(f"/api/v1/generations/{started}", headers=member.headers).json()
    assert kept["content"] == STORED  # a progress save does not write a given-up generation
    ended = generation.Outcome(STORED + LATE, GenerationStatus.COMPLETE, None, MODEL, len(STORED))
    generation._finish(db, started, ended)

    stored = client.get(f"/api/v1/generations/{started}", headers=member.headers).json()
    assert (stored["status"], stored["error"], stored["content"]) == (
        "error",
        generation.INTERRUPTED,
        STORED + LATE,
    )


def test_a_draft_given_up_is_not_overwritten_by_the_models_late_reply(
    client: TestClient, member: Actor, db: Database, settings: Settings
) -> None:
    runner = runners.new_runner()
    waiting = add_waiting_draft(db, runner)
    assert give_up(db, runner) == Marked(drafts=1)
    edited = client.patch(
        f"/api/v1/drafts/{waiting}", json={"name": "Order consumer"}, headers=member.headers
    )
    assert edited.status_code == 200

    late: dict[str, Any] = {
        "name": "Something else",
        "problem": "The model's problem statement.",
        "template": "rabbitmq-consumer",
        "proposals": [{"category": "load", "title": "Pooling", "question": "How many?"}],
    }
    catalog = templates.load_catalog(settings.templates_dir)
    drafts._fill(db, waiting, late, catalog, False, None)

    stored = client.get(f"/api/v1/drafts/{waiting}", headers=member.headers).json()
    assert (stored["name"], stored["problem"], stored["template"]) == (
        "Order consumer",
        "p",
        "generic-service",
    )
    assert stored["proposals"] == []
    assert stored["note"] == drafts.INTERRUPTED


# A final save whose COMMIT reached the database but whose answer was lost in an outage is
# made again by app/db.py's ``when_available``: the process finds its own outcome stored,
# which must not be taken for another process having given the work up.
GIVEN_UP_WARNING = "by another server process"


def test_a_reply_saved_again_after_its_commits_answer_was_lost_is_stored_once_quietly(
    client: TestClient,
    member: Actor,
    db: Database,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")["id"]
    reply_id = add_streaming_reply(db, blind, db.runner, "", model=MODEL)
    job = ReplyJob(
        reply_id=reply_id, thread_id=blind, model=MODEL, prompt=[], answers_pushback=False
    )
    monkeypatch.setattr(app_db, "UNAVAILABLE_RETRY_S", (0.01,))
    saves = []
    real_save_final = ReplyWriter._save_final

    def commit_then_lose_the_answer(writer: ReplyWriter, *args: Any) -> None:
        real_save_final(writer, *args)
        saves.append(1)
        if len(saves) == 1:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ReplyWriter, "_save_final", commit_then_lose_the_answer)

    async def finish() -> None:
        writer = ReplyWriter(db, job)
        writer.add(STORED + LATE)
        await writer.finish(MessageStatus.COMPLETE, CallTrace(), None)

    with caplog.at_level("WARNING"):
        run_coroutine(finish())

    stored = next(r for r in replies(thread(client, member, blind)) if r["id"] == reply_id)
    assert (len(saves), stored["status"], stored["content"]) == (2, "complete", STORED + LATE)
    assert GIVEN_UP_WARNING not in caplog.text
    assert f"reply {reply_id} went on once the database was back" in caplog.text


def test_a_generation_saved_again_after_its_commits_answer_was_lost_logs_nothing_more(
    client: TestClient, member: Actor, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    project = factories.create_project(client, member)
    started = add_streaming_generation(db, project["id"], db.runner, STORED, model=MODEL)
    ended = generation.Outcome(STORED + LATE, GenerationStatus.COMPLETE, None, MODEL, len(STORED))

    with caplog.at_level("WARNING"):
        generation._finish(db, started, ended)
        generation._finish(db, started, ended)  # as ``when_available`` makes it again

    stored = client.get(f"/api/v1/generations/{started}", headers=member.headers).json()
    assert (stored["status"], stored["content"]) == ("complete", STORED + LATE)
    assert GIVEN_UP_WARNING not in caplog.text


def test_a_draft_filled_again_after_its_commits_answer_was_lost_logs_nothing_more(
    client: TestClient,
    member: Actor,
    db: Database,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    waiting = add_waiting_draft(db, db.runner)
    answer: dict[str, Any] = {
        "name": "Order consumer",
        "problem": "Orders arrive twice.",
        "template": "rabbitmq-consumer",
        "proposals": [{"category": "load", "title": "Pooling", "question": "How many?"}],
    }
    catalog = templates.load_catalog(settings.templates_dir)

    with caplog.at_level("WARNING"):
        drafts._fill(db, waiting, answer, catalog, False, None)
        filled = client.get(f"/api/v1/drafts/{waiting}", headers=member.headers).json()
        drafts._fill(db, waiting, answer, catalog, False, None)

    assert client.get(f"/api/v1/drafts/{waiting}", headers=member.headers).json() == filled
    assert (filled["status"], filled["name"]) == ("ready", "Order consumer")
    assert GIVEN_UP_WARNING not in caplog.text
