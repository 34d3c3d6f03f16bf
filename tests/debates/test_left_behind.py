"""Work of a server process that died while others serve the same PostgreSQL database.

Start-up marks what a gone process left (tests/debates/test_threads.py); these tests are
about the processes that go on serving: they mark a gone process's replies, generations
and drafts once it has been gone for a while, without a restart, and leave alone the work
of a process that is alive, or was cut off from the database for a moment only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app import live, runners
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.services import recovery
from app.services.recovery import GONE_FOR_S, Marked, Sweeper
from tests import factories
from tests.conftest import Actor, is_postgres, run_coroutine
from tests.debates.conftest import MODEL
from tests.debates.helpers import (
    add_streaming_generation,
    add_streaming_reply,
    add_waiting_draft,
    replies,
    start_thread,
    thread,
)
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.skipif(
    not is_postgres(), reason="one server process per SQLite database: nothing to sweep"
)
INTERRUPTED = "Interrupted: the server stopped while the model was still writing."


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def alive(db: Database, runner: int) -> Iterator[None]:
    """Another server process with this runner number, as far as the database can tell:
    a connection holding the runner's lock, as a live process's listener does."""
    connection = db.engine.connect()
    try:
        connection.execute(select(func.pg_advisory_lock(runners.LOCK_CLASS, runner)))
        yield
    finally:
        # Unlocked before the connection is closed: a closed connection's lock goes only once
        # its server process has noticed, and a sweep just after could still find it held
        # (seen once in CI: the grace period then started a sweep late).
        connection.execute(select(func.pg_advisory_unlock(runners.LOCK_CLASS, runner)))
        connection.invalidate()  # closed, not pooled


def post(client: TestClient, member: Actor, thread_id: int) -> int:
    response = client.post(
        f"/api/v1/threads/{thread_id}/messages", json={"content": "Next?"}, headers=member.headers
    )
    return response.status_code


def reply_in(client: TestClient, member: Actor, thread_id: int, reply_id: int) -> dict[str, Any]:
    return next(r for r in replies(thread(client, member, thread_id)) if r["id"] == reply_id)


def test_a_sweep_marks_the_work_of_a_process_gone_for_a_while_and_only_that(
    client: TestClient, member: Actor, db: Database, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    dead_runner, live_runner = runners.new_runner(), runners.new_runner()
    dead_thread, live_thread, own_thread = (
        start_thread(client, member, project["id"], "blind")["id"] for _ in range(3)
    )
    dead_reply = add_streaming_reply(db, dead_thread, dead_runner, "half a rep", model=MODEL)
    live_reply = add_streaming_reply(db, live_thread, live_runner, "still writ", model=MODEL)
    own_reply = add_streaming_reply(db, own_thread, db.runner, "mine, writ", model=MODEL)
    generation_id = add_streaming_generation(
        db, project["id"], dead_runner, "def store(", model=MODEL
    )
    draft_id = add_waiting_draft(db, dead_runner)
    clock = Clock()
    sweeper = Sweeper(db, clock=clock)
    with alive(db, live_runner):
        assert sweeper.sweep() == Marked()  # the first sweep to find it gone
        clock.now += GONE_FOR_S - 1
        assert sweeper.sweep() == Marked()
        assert post(client, member, dead_thread) == 409  # still waits for the reply
        clock.now += 1
        llm.script("The next answer.")
        marked = sweeper.sweep()

    assert marked == Marked(replies=1, generations=1, drafts=1)
    stopped = reply_in(client, member, dead_thread, dead_reply)
    assert (stopped["status"], stopped["error"], stopped["content"]) == (
        "interrupted",
        INTERRUPTED,
        "half a rep",
    )
    assert reply_in(client, member, live_thread, live_reply)["status"] == "streaming"
    assert reply_in(client, member, own_thread, own_reply)["status"] == "streaming"
    code = client.get(f"/api/v1/generations/{generation_id}", headers=member.headers).json()
    assert (code["status"], code["error"], code["content"]) == ("error", INTERRUPTED, "def store(")
    waited = client.get(f"/api/v1/drafts/{draft_id}", headers=member.headers).json()
    assert waited["status"] == "ready"
    assert "server stopped" in waited["note"]
    assert post(client, member, dead_thread) == 202  # the thread takes questions again
    assert sweeper.sweep() == Marked()  # nothing left to mark


def test_a_process_back_within_the_grace_period_keeps_its_work(
    client: TestClient, member: Actor, db: Database
) -> None:
    """A live process's lock is free while its listener reconnects: that is not death."""
    project = factories.create_project(client, member)
    runner = runners.new_runner()
    blind = start_thread(client, member, project["id"], "blind")["id"]
    reply_id = add_streaming_reply(db, blind, runner, "still writ", model=MODEL)
    clock = Clock()
    sweeper = Sweeper(db, clock=clock)
    assert sweeper.sweep() == Marked()  # gone since now...
    clock.now += GONE_FOR_S / 2
    with alive(db, runner):  # ...but back before the grace period ends
        assert sweeper.sweep() == Marked()
    clock.now += GONE_FOR_S / 2
    assert sweeper.sweep() == Marked()  # gone again: the grace period starts over
    clock.now += GONE_FOR_S - 1
    assert sweeper.sweep() == Marked()
    assert reply_in(client, member, blind, reply_id)["status"] == "streaming"
    clock.now += 1
    assert sweeper.sweep() == Marked(replies=1)
    assert reply_in(client, member, blind, reply_id)["status"] == "interrupted"


def test_a_marked_reply_is_announced_to_its_thread(
    client: TestClient, member: Actor, db: Database
) -> None:
    """So a page showing the reply, in this process or another, stops waiting for it."""
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")["id"]
    reply_id = add_streaming_reply(db, blind, runners.new_runner(), "half a rep", model=MODEL)
    clock = Clock()
    sweeper = Sweeper(db, clock=clock)
    sweeper.sweep()
    clock.now += GONE_FOR_S
    hub = live.hub_for(db.writer)
    assert hub is not None

    async def sweep_while_subscribed() -> live.Event | None:
        async with hub.subscribe(f"thread:{blind}") as subscription:
            await asyncio.to_thread(sweeper.sweep)
            return await subscription.get(timeout=5)

    event = run_coroutine(sweep_while_subscribed())
    assert event == {"type": "message", "id": reply_id, "status": "interrupted"}


def test_a_serving_process_sweeps_on_its_own(
    member: Actor, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery, "SWEEP_INTERVAL_S", 0.05)
    monkeypatch.setattr(recovery, "GONE_FOR_S", 0.2)
    with TestClient(create_app(settings)) as serving:
        project = factories.create_project(serving, member)
        blind = start_thread(serving, member, project["id"], "blind")["id"]
        # Added after start-up, which would otherwise have marked it.
        reply_id = add_streaming_reply(db, blind, runners.new_runner(), "half a rep", model=MODEL)
        deadline = time.monotonic() + 10
        while reply_in(serving, member, blind, reply_id)["status"] == "streaming":
            assert time.monotonic() < deadline, "the serving process never swept"
            time.sleep(0.05)
        assert reply_in(serving, member, blind, reply_id)["status"] == "interrupted"


def test_the_sweeps_go_on_while_the_database_is_unreachable(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that cannot reach the database says so in one line, and the next one retries."""
    monkeypatch.setattr(recovery, "SWEEP_INTERVAL_S", 0.01)
    nowhere = Database(Settings(database_url="postgresql://postgres@127.0.0.1:1/designgate"))

    async def sweep_for_a_while() -> bool:
        sweeping = asyncio.create_task(Sweeper(nowhere).run())
        await asyncio.sleep(0.5)
        still_sweeping = not sweeping.done()
        sweeping.cancel()
        return still_sweeping

    with caplog.at_level("WARNING", logger=recovery.log.name):
        assert run_coroutine(sweep_for_a_while())
    failures = [r for r in caplog.records if "sweeping for work left behind failed" in r.message]
    assert len(failures) >= 2
    assert all(r.levelname == "WARNING" and r.exc_info is None for r in failures)
    assert "Connection refused" in failures[0].getMessage()
    nowhere.dispose()
