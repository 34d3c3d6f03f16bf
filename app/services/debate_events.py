"""A thread's live event stream: the current state of every message, then what changes.

The subscription starts before the snapshot is read, so nothing that happens in between
is lost; deltas that the snapshot already contains are trimmed or dropped, so a client
that appends every delta it receives ends up with exactly the stored text.

Deltas come twice: unsaved ones as the model writes, then saved ones carrying all the text
since the reply's previous save. An unsaved delta that does not follow on from what a
client has (it joined between saves) is dropped rather than answered with a re-read: the
next saved delta starts where the stored text the client read ends, and fills the gap.
"""

import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.db import Database
from app.live import RESET, Hub
from app.models import Message
from app.models.enums import MessageStatus
from app.services.debate_overview import ThreadPage, thread_page
from app.services.debates import thread_messages
from app.shared_reads import SharedReads, per_database
from app.stream_access import ACCOUNT, AccessWatch

# How often an idle stream checks whether its client has gone.
IDLE_CHECK_S = 1.0
# The kind of the event that ends the first snapshot (only when asked for).
SYNCED = "synced"
# The kind of the event that says nothing happened for a while (only when asked for).
IDLE = "idle"
# Marks a delta sent before its text was stored (see replies.py); clients never see it.
UNSAVED = "unsaved"
# The kind of the last event of a stream whose sign-in no longer holds (only with a watch).
ENDED = "ended"


@dataclass(frozen=True)
class ThreadEvent:
    """``message`` carries a whole message; ``delta`` carries new text for one message.

    ``arrived_at`` is when the stream's latest change arrived (``time.monotonic()``): a read
    that starts then or later sees it, so it may be shared (app/shared_reads.py). Unknown
    (infinity), only a read of its own will do."""

    kind: str
    message: Message | None = None
    data: dict[str, Any] | None = None
    arrived_at: float = math.inf


async def thread_events(
    *,
    db: Database,
    hub: Hub,
    thread_id: int,
    disconnected: Callable[[], Awaitable[bool]],
    mark_synced: bool = False,
    idle_after_s: float | None = None,
    watch: AccessWatch | None = None,
    account_events: bool = False,
) -> AsyncGenerator[ThreadEvent]:
    """Yield until the client disconnects.

    With ``mark_synced``, a ``synced`` event follows the first snapshot, so a page can
    replace what it shows with the snapshot as a whole; with ``idle_after_s``, an ``idle``
    event follows each quiet stretch that long, so a page can keep its connection alive.
    With a ``watch``, an ``ended`` event ends the stream once the sign-in that opened it
    no longer holds (signed out, token revoked, account deactivated); with
    ``account_events`` too, an ``account`` event follows each change of the account that
    leaves it holding (a page then checks whether its user's role changed).
    """
    channels = [f"thread:{thread_id}", *([watch.channel] if watch else [])]
    async with hub.subscribe(*channels) as subscription:
        # A sign-out between the request's check and the subscription announced nothing here.
        if watch is not None and not await watch.holds():
            yield ThreadEvent(ENDED)
            return
        relay = _Relay(thread_reads(db), thread_id)
        for event in await relay.snapshot(subscription.delivered_at):
            yield event
        if mark_synced:
            yield ThreadEvent(SYNCED)
        quiet_s = 0.0
        checked_at = time.monotonic()
        if await disconnected():
            return
        while True:
            item = await subscription.get(timeout=IDLE_CHECK_S)
            if watch is not None and not await watch.holds_after([item] if item else []):
                yield ThreadEvent(ENDED)
                return
            if item is not None and item.get("type") == ACCOUNT:
                if account_events:
                    yield ThreadEvent(ACCOUNT)
                continue
            # Asking the server whether the client left costs a cancel scope and a receive:
            # once per IDLE_CHECK_S, not once per relayed event.
            now = time.monotonic()
            if now - checked_at >= IDLE_CHECK_S:
                checked_at = now
                if await disconnected():
                    return
            if item is None:
                quiet_s += IDLE_CHECK_S
                if idle_after_s is not None and quiet_s >= idle_after_s:
                    quiet_s = 0.0
                    yield ThreadEvent(IDLE)
                continue
            quiet_s = 0.0
            for event in await relay.relay(item, subscription.delivered_at):
                yield event


class ThreadReads:
    """The reads a thread's streams share: its messages, one message, and what its live page
    shows around them (app/web/thread_stream.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.messages: SharedReads[int, list[Message]] = SharedReads(self._read_all)
        self.message: SharedReads[int, Message | None] = SharedReads(self._read_one)
        self.page: SharedReads[int, ThreadPage] = SharedReads(self._read_page)

    def _read_all(self, thread_id: int) -> list[Message]:
        with self.db.reads() as session:
            return thread_messages(session, thread_id)

    def _read_one(self, message_id: int) -> Message | None:
        with self.db.reads() as session:
            return session.get(Message, message_id)

    def _read_page(self, thread_id: int) -> ThreadPage:
        with self.db.reads() as session:
            return thread_page(session, thread_id=thread_id)


thread_reads = per_database(ThreadReads)


class _Relay:
    """Turns hub events into client events, tracking how much text each client has.

    The shared message objects are read, never changed: every stream of the thread may hold
    the same one."""

    def __init__(self, reads: ThreadReads, thread_id: int) -> None:
        self.reads = reads
        self.thread_id = thread_id
        self.sent_length: dict[int, int] = {}

    async def snapshot(self, arrived_at: float) -> list[ThreadEvent]:
        messages = await self.reads.messages.get(self.thread_id, fresh_after=arrived_at)
        self.sent_length = {m.id: len(m.content) for m in messages}
        return [ThreadEvent("message", message=m, arrived_at=arrived_at) for m in messages]

    async def relay(self, item: dict[str, Any], arrived_at: float) -> list[ThreadEvent]:
        if item.get("type") == RESET:
            return await self.snapshot(arrived_at)
        message_id = item.get("id")
        if not isinstance(message_id, int):
            return []
        streaming = item.get("status") == MessageStatus.STREAMING
        if item.get("type") == "delta" and streaming:
            if message_id in self.sent_length:
                delta = self._delta(message_id, item)
                if delta is not None:
                    return delta
            if item.get(UNSAVED):
                return []  # a gap: the next saved delta fills it
        # New messages, verdicts, finished replies and gaps go out whole (with final HTML).
        return await self._whole(message_id, arrived_at)

    def _delta(self, message_id: int, item: dict[str, Any]) -> list[ThreadEvent] | None:
        """The part of a delta this client lacks; None when there is a gap before it."""
        sent = self.sent_length[message_id]
        offset, delta = int(item.get("offset", 0)), str(item.get("delta", ""))
        if offset > sent:
            return None
        if offset + len(delta) <= sent:
            return []
        self.sent_length[message_id] = offset + len(delta)
        trimmed = {key: value for key, value in item.items() if key != UNSAVED}
        trimmed.update(offset=sent, delta=delta[sent - offset :])
        return [ThreadEvent("delta", data=trimmed)]

    async def _whole(self, message_id: int, arrived_at: float) -> list[ThreadEvent]:
        message = await self.reads.message.get(message_id, fresh_after=arrived_at)
        if message is None or message.thread_id != self.thread_id:
            return []
        self.sent_length[message.id] = len(message.content)
        return [ThreadEvent("message", message=message, arrived_at=arrived_at)]
