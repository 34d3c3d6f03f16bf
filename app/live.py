"""Publish/subscribe of changes, for live pages and SSE streams.

Services call ``announce(session, channel, event)``; the event is published only
after the transaction commits (so a subscriber that re-reads sees the change)
and dropped on rollback. Events carry ids and small deltas, never whole rows.

Channels: ``project:{id}``, ``thread:{id}``, ``meeting:{id}``, ``generation:{id}``.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

Event = dict[str, Any]
_PENDING = "designgate_live_pending"
# An event of this type tells subscribers they may have missed events: re-read everything.
RESET = "reset"
SUBSCRIBER_QUEUE_SIZE = 1000


class Subscription:
    """Events for one subscriber, delivered on the event loop it subscribed from."""

    def __init__(self, hub: "LocalHub", channel: str) -> None:
        self.hub = hub
        self.channel = channel
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)

    def deliver(self, item: Event) -> None:
        """Called on the subscriber's loop; a subscriber too slow to keep up gets a reset."""
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
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

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
        with self._lock:
            targets = list(self._subscribers.get(channel, ()))
        for subscription in targets:
            with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
                subscription.loop.call_soon_threadsafe(subscription.deliver, dict(item))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(self, channel)
        with self._lock:
            self._subscribers.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers.get(channel, set()).discard(subscription)

    def subscriber_count(self, channel: str) -> int:
        with self._lock:
            return len(self._subscribers.get(channel, ()))


Hub = LocalHub


def announce(session: Session, channel: str, item: Event) -> None:
    """Queue an event to publish once this session's transaction commits."""
    session.info.setdefault(_PENDING, []).append((channel, item))


def connect(factory: sessionmaker[Session], hub: Hub) -> None:
    """Publish each session's queued events after its commit; forget them on rollback."""

    @event.listens_for(factory, "after_commit")
    def _publish(session: Session) -> None:
        for channel, item in session.info.pop(_PENDING, []):
            hub.publish(channel, item)

    @event.listens_for(factory, "after_soft_rollback")
    def _forget(session: Session, _previous: Any) -> None:
        session.info.pop(_PENDING, None)
