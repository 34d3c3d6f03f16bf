"""Publish/subscribe of changes, for live pages and SSE streams.

Services call ``announce(session, channel, event)``; the event is published only
after the transaction commits (so a subscriber that re-reads sees the change)
and dropped on rollback. Events carry ids and small deltas, never whole rows.

Channels: ``project:{id}``, ``thread:{id}``, ``meeting:{id}``, ``generation:{id}``.

Two hubs: ``LocalHub`` delivers in-process (one server process, the SQLite
deployment); ``PostgresHub`` (app/live_postgres.py) also sends events through NOTIFY (a
reply's streamed pieces only while another process listens) and LISTENs on one dedicated
connection per process, so every process's subscribers see every process's events. A
process delivers its own events to its own subscribers directly and ignores them when they
come back through LISTEN: a round trip through the database, and a place in the queue of
its commits, is what its subscribers waited on for each streamed piece of a reply.
"""

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

Event = dict[str, Any]
_PENDING = "designgate_live_pending"
# An event of this type tells subscribers they may have missed events: re-read everything.
RESET = "reset"
SUBSCRIBER_QUEUE_SIZE = 1000


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Subscription:
    """Events for one subscriber, delivered on the event loop it subscribed from."""

    def __init__(self, hub: "LocalHub", channels: tuple[str, ...]) -> None:
        self.hub = hub
        self.channels = channels
        self.channel = channels[0]
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        # When the latest event arrived (time.monotonic()): a read started later sees it.
        self.delivered_at = time.monotonic()

    def deliver(self, item: Event) -> None:
        """Called on the subscriber's loop; a subscriber too slow to keep up gets a reset."""
        self.delivered_at = time.monotonic()
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drain()
            self.queue.put_nowait({"type": RESET})

    def _drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when ``timeout`` seconds pass without one."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            # A timeout scope, not wait_for: wait_for wraps the get in a task of its own,
            # which an event stream paid for on every event it relayed.
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None

    def take_waiting(self) -> list[Event]:
        """Events already queued, without waiting."""
        waiting = []
        while not self.queue.empty():
            waiting.append(self.queue.get_nowait())
        return waiting

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


class LocalHub:
    """In-process hub: enough for one server process (the SQLite deployment)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def publish(self, channel: str, item: Event) -> None:
        """Thread-safe and non-blocking: callable from request threads and the loop alike."""
        self.publish_here(channel, item)

    def publish_here(self, channel: str, item: Event) -> None:
        """Deliver to this process's subscribers."""
        with self._lock:
            targets = list(self._subscribers.get(channel, ()))
        running = _running_loop()
        for subscription in targets:
            if subscription.loop is running:
                # Already on the subscriber's loop (a reply's unsaved piece, a NOTIFY
                # received): no need to wake the loop through its self-pipe.
                running.call_soon(subscription.deliver, dict(item))
                continue
            with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
                subscription.loop.call_soon_threadsafe(subscription.deliver, dict(item))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, *more: str) -> AsyncIterator[Subscription]:
        """Events of one or more channels, in the order they were published."""
        subscription = Subscription(self, (channel, *more))
        with self._lock:
            for name in subscription.channels:
                self._subscribers.setdefault(name, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                for name in subscription.channels:
                    self._subscribers.get(name, set()).discard(subscription)

    def publish_soon(self, channel: str, item: Event) -> None:
        """Publish outside any transaction without blocking; call it from the event loop."""
        self.publish(channel, item)

    def attach(self, factory: sessionmaker[Session]) -> None:
        """Publish each session's queued events here after its commit; forget them on
        rollback."""

        @event.listens_for(factory, "after_commit")
        def _publish(session: Session) -> None:
            if session.in_nested_transaction():
                return  # a savepoint was released; the real commit is still to come
            for channel, item in session.info.pop(_PENDING, []):
                self.publish_here(channel, item)

        @event.listens_for(factory, "after_soft_rollback")
        def _forget(session: Session, _previous: Any) -> None:
            session.info.pop(_PENDING, None)

    def reset_all(self) -> None:
        """Tell every subscriber it may have missed events (after a listener reconnect)."""
        with self._lock:
            targets = {s for subscribers in self._subscribers.values() for s in subscribers}
        for subscription in targets:
            with contextlib.suppress(RuntimeError):
                subscription.loop.call_soon_threadsafe(subscription.deliver, {"type": RESET})

    def subscriber_count(self, channel: str) -> int:
        with self._lock:
            return len(self._subscribers.get(channel, ()))


Hub = LocalHub


def make_hub(engine: Engine, *, runner: int | None = None) -> LocalHub:
    """In-process on SQLite (one process); LISTEN/NOTIFY on PostgreSQL (any number).

    On PostgreSQL the hub's listener connection also holds ``runner``'s lock while it is
    connected: the sign to other processes that this one is alive (app/runners.py).
    """
    if engine.dialect.name == "postgresql":
        # Imported here: psycopg is a twelfth of start-up, and SQLite never needs it.
        from app.live_postgres import PostgresHub

        return PostgresHub(engine, runner=runner)
    return LocalHub()


def announce(session: Session, channel: str, item: Event) -> None:
    """Queue an event to publish once this session's transaction commits."""
    session.info.setdefault(_PENDING, []).append((channel, item))


_HUBS: "weakref.WeakKeyDictionary[sessionmaker[Session], LocalHub]" = weakref.WeakKeyDictionary()


def hub_for(factory: sessionmaker[Session]) -> LocalHub | None:
    """The hub a session factory was connected to (for events that need no transaction)."""
    return _HUBS.get(factory)


def connect(factory: sessionmaker[Session], hub: Hub) -> None:
    """Publish each session's queued events once it commits; forget them on rollback."""
    _HUBS[factory] = hub
    hub.attach(factory)
