"""A change that reaches many streams of one thread is read once for all of them, and never
answered with a read that started before the change arrived."""

import asyncio
import threading
import time
from collections.abc import AsyncGenerator

from fastapi.testclient import TestClient

from app.db import Database
from app.live import LocalHub
from app.models import Message, Thread
from app.models.enums import MessageStatus
from app.services import debate_events
from app.services.debate_events import ThreadEvent
from app.shared_reads import SharedReads
from tests import factories
from tests.conftest import Actor, run_coroutine
from tests.perf.test_statement_counts import counted_statements


def _thread_with_a_message(client: TestClient, db: Database, author: Actor) -> int:
    project_id = factories.create_project(client, author)["id"]
    with db.transaction() as session:
        thread = Thread(
            project_id=project_id, mode="open", models=["m"], created_by_id=author.user_id
        )
        session.add(thread)
        session.flush()
        session.add(
            Message(
                thread_id=thread.id,
                turn=1,
                role="user",
                content="How does it fail?",
                status=MessageStatus.COMPLETE,
                author_id=author.user_id,
            )
        )
        return thread.id


def _add_reply(db: Database, thread_id: int) -> int:
    with db.transaction() as session:
        reply = Message(
            thread_id=thread_id,
            turn=1,
            role="assistant",
            content="It fails when the queue is down.",
            status=MessageStatus.COMPLETE,
            requested_model="m",
        )
        session.add(reply)
        session.flush()
        return reply.id


async def _never() -> bool:
    return False


async def _statements_to_relay_a_reply(db: Database, thread_id: int, streams: int) -> int:
    """Reads (SELECTs; SQLite adds its BEGIN) while ``streams`` streams of the thread relay one
    finished reply."""
    hub = LocalHub()
    followers: list[AsyncGenerator[ThreadEvent]] = [
        debate_events.thread_events(
            db=db, hub=hub, thread_id=thread_id, disconnected=_never, mark_synced=True
        )
        for _ in range(streams)
    ]
    try:
        for follower in followers:  # each one's snapshot: the thread's messages so far
            async for event in follower:
                if event.kind == debate_events.SYNCED:
                    break
        reply_id = await asyncio.to_thread(_add_reply, db, thread_id)
        with counted_statements(db) as statements:
            hub.publish_here(f"thread:{thread_id}", {"type": "message", "id": reply_id})
            relayed = await asyncio.gather(*(anext(follower) for follower in followers))
        assert [event.message.id for event in relayed if event.message] == [reply_id] * streams
        return len([statement for statement in statements if statement.startswith("SELECT")])
    finally:
        for follower in followers:
            await follower.aclose()


def test_a_reply_that_five_streams_follow_is_read_once(
    client: TestClient, db: Database, member: Actor
) -> None:
    thread_id = _thread_with_a_message(client, db, member)
    one = run_coroutine(_statements_to_relay_a_reply(db, thread_id, streams=1))
    five = run_coroutine(_statements_to_relay_a_reply(db, thread_id, streams=5))
    assert one == five == 1


def test_a_read_that_started_before_the_change_arrived_is_not_shared() -> None:
    lock = threading.Lock()
    reads: list[int] = []
    begun = [threading.Event(), threading.Event()]
    release = threading.Event()

    def read(key: int) -> int:
        """Numbers the reads in the order they begin; each waits for ``release``."""
        with lock:
            reads.append(key)
            number = len(reads)
        begun[number - 1].set()
        release.wait(timeout=10)
        return number

    async def scenario() -> tuple[int, int, int]:
        shared: SharedReads[int, int] = SharedReads(read)
        before = time.monotonic()  # a stream's change arrives
        first = asyncio.ensure_future(shared.get(7, fresh_after=before))
        await asyncio.to_thread(begun[0].wait, 10)  # its read has begun, and waits
        joined = asyncio.ensure_future(shared.get(7, fresh_after=before))
        after = time.monotonic()  # another stream's change arrives while that read runs
        fresh = asyncio.ensure_future(shared.get(7, fresh_after=after))
        await asyncio.to_thread(begun[1].wait, 10)
        release.set()
        return await first, await joined, await fresh

    first, joined, fresh = run_coroutine(scenario())
    # The stream whose change came before the first read began joined it; the one whose
    # change came after got a read of its own.
    assert (first, joined) == (1, 1)
    assert fresh == 2
    assert reads == [7, 7]
