"""Publish/subscribe of changes, for live pages and SSE streams.

Services call ``announce(session, channel, event)``; the event is published only
after the transaction commits (so a subscriber that re-reads sees the change)
and dropped on rollback. Events carry ids and small deltas, never whole rows.

Channels: ``project:{id}``, ``thread:{id}``, ``meeting:{id}``, ``generation:{id}``.

Two hubs: ``LocalHub`` delivers in-process (one server process, the SQLite
deployment); ``PostgresHub`` also sends every event through PostgreSQL NOTIFY and
LISTENs on one dedicated connection per process, so every process's
subscribers see every process's events. A process delivers its own events to its
own subscribers directly and ignores them when they come back through LISTEN: a
round trip through the database, and a place in the queue of its commits, is what
its subscribers waited on for each streamed piece of a reply.
"""

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import runners

Event = dict[str, Any]
_PENDING = "designgate_live_pending"
# An event of this type tells subscribers they may have missed events: re-read everything.
RESET = "reset"
SUBSCRIBER_QUEUE_SIZE = 1000
log = logging.getLogger(__name__)


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


# NOTIFY payloads must stay under 8000 bytes; events carry ids, so this is generous.
MAX_PAYLOAD_BYTES = 7900
NOTIFY_CHANNEL = "designgate_live"
LISTENER_APPLICATION_NAME = "designgate-live"
SENDER_APPLICATION_NAME = "designgate-live-send"
LISTEN_POLL_S = 10.0
RECONNECT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def _payload(channel: str, item: Event, origin: str) -> str:
    """The NOTIFY payload; an oversized event is replaced by a reset of its channel."""
    message = {"channel": channel, "event": item, "origin": origin}
    payload = json.dumps(message, separators=(",", ":"))
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        log.warning("live event on %s too large for NOTIFY; sending a reset", channel)
        reset = {"channel": channel, "event": {"type": RESET}, "origin": origin}
        payload = json.dumps(reset, separators=(",", ":"))
    return payload


class PostgresHub(LocalHub):
    """LISTEN/NOTIFY hub for several server processes on one PostgreSQL database.

    Events are NOTIFYed inside the announcing transaction (PostgreSQL delivers them
    only if it commits) and published to this process's subscribers once it has
    committed; one listener connection per process hands the other processes' events
    to local subscribers. After the listener reconnects, every subscriber gets a reset.
    """

    transactional = True

    def __init__(self, engine: Engine, *, runner: int | None = None) -> None:
        super().__init__()
        self._engine = engine
        self._runner = runner
        # Marks this process's NOTIFY payloads, which its listener then skips.
        self.origin = uuid.uuid4().hex
        url = make_url(engine.url.render_as_string(hide_password=False))
        # A name in pg_stat_activity, so an operator (or a test) can find this connection.
        url = url.set(drivername="postgresql").update_query_dict(
            {"application_name": LISTENER_APPLICATION_NAME}
        )
        self._conninfo = url.render_as_string(hide_password=False)
        sender = url.update_query_dict({"application_name": SENDER_APPLICATION_NAME})
        self._sender_conninfo = sender.render_as_string(hide_password=False)
        self._sender_connection: psycopg.AsyncConnection[Any] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._outbox: list[tuple[str, Event]] = []
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start listening; wait briefly for the first LISTEN so early events are not missed."""
        self._listening = asyncio.Event()
        self._listener = asyncio.create_task(self._listen_forever(), name="designgate-live")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout=5)

    async def stop(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error, OSError):
                await self._sender
        await self._close_sender()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def publish(self, channel: str, item: Event) -> None:
        """NOTIFY outside any transaction (blocking; call it from a thread, not the loop)."""
        with self._engine.begin() as connection:
            self.notify(connection, channel, item)
        self.publish_here(channel, item)

    def publish_here(self, channel: str, item: Event) -> None:
        """Deliver to this process's subscribers (other processes get it by NOTIFY)."""
        LocalHub.publish(self, channel, item)

    def publish_soon(self, channel: str, item: Event) -> None:
        """Deliver here at once and queue the event for the other processes: one task
        NOTIFYs whatever has queued up, in order, in one statement per batch on its own
        connection, so a burst of small events costs few round trips and never waits
        behind the thread pool's database work."""
        self.publish_here(channel, item)
        self._outbox.append((channel, item))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._notify_batch(
                    [_payload(channel, item, self.origin) for channel, item in batch]
                )
            except (psycopg.Error, OSError) as exc:
                # Subscribers still get the text from the reply's next save.
                log.warning("could not send %d live events: %s", len(batch), exc)
                await self._close_sender()

    async def _notify_batch(self, payloads: list[str]) -> None:
        connection = self._sender_connection
        if connection is None or connection.closed:
            connection = self._sender_connection = await psycopg.AsyncConnection.connect(
                self._sender_conninfo, autocommit=True
            )
        # One statement, one transaction: delivered together, in the order of the array.
        await connection.execute(
            "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload",
            (NOTIFY_CHANNEL, payloads),
        )

    async def _close_sender(self) -> None:
        connection, self._sender_connection = self._sender_connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()

    def notify(self, connection: Connection, channel: str, item: Event) -> None:
        """Queue a NOTIFY on this connection's transaction."""
        connection.execute(
            text("SELECT pg_notify(:name, :payload)"),
            {"name": NOTIFY_CHANNEL, "payload": _payload(channel, item, self.origin)},
        )

    async def _listen_forever(self) -> None:
        attempt = 0
        connected_before = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    if self._runner is not None:
                        await connection.execute(
                            "SELECT pg_advisory_lock(%s, %s)", (runners.LOCK_CLASS, self._runner)
                        )
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._listening.set()
                    if connected_before:
                        self.reset_all()  # events sent while we were away are lost
                    connected_before, attempt = True, 0
                    await self._receive(connection)
            except (psycopg.Error, OSError) as exc:
                log.warning("live listener lost its connection: %s", exc)
            self._listening.clear()
            await asyncio.sleep(RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)])
            attempt += 1

    async def _receive(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Deliver notifications; between them, a ping notices a silently dead connection."""
        while True:
            async for notification in connection.notifies(timeout=LISTEN_POLL_S):
                self._deliver(notification.payload)
            await connection.execute("SELECT 1")

    def _deliver(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            channel, item = message["channel"], message["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed live payload")
            return
        if message.get("origin") == self.origin:
            return  # delivered here when it was published
        LocalHub.publish(self, channel, item)


Hub = LocalHub


def make_hub(engine: Engine, *, runner: int | None = None) -> LocalHub:
    """In-process on SQLite (one process); LISTEN/NOTIFY on PostgreSQL (any number).

    On PostgreSQL the hub's listener connection also holds ``runner``'s lock while it is
    connected: the sign to other processes that this one is alive (app/runners.py).
    """
    if engine.dialect.name == "postgresql":
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
    """Publish each session's queued events after its commit; forget them on rollback."""
    _HUBS[factory] = hub
    if isinstance(hub, PostgresHub):
        _connect_transactional(factory, hub)
        return

    @event.listens_for(factory, "after_commit")
    def _publish(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint was released; the real commit is still to come
        for channel, item in session.info.pop(_PENDING, []):
            hub.publish(channel, item)

    @event.listens_for(factory, "after_soft_rollback")
    def _forget(session: Session, _previous: Any) -> None:
        session.info.pop(_PENDING, None)


def _connect_transactional(factory: sessionmaker[Session], hub: PostgresHub) -> None:
    """NOTIFY inside the committing transaction: PostgreSQL drops it if the commit fails.
    This process's subscribers get the events once the commit has succeeded."""

    @event.listens_for(factory, "before_commit")
    def _notify(session: Session) -> None:
        if session.in_nested_transaction():
            return
        pending = session.info.get(_PENDING, [])
        if pending:
            connection = session.connection()
            for channel, item in pending:
                hub.notify(connection, channel, item)

    @event.listens_for(factory, "after_commit")
    def _publish_here(session: Session) -> None:
        if session.in_nested_transaction():
            return
        for channel, item in session.info.pop(_PENDING, []):
            hub.publish_here(channel, item)

    @event.listens_for(factory, "after_soft_rollback")
    def _forget(session: Session, _previous: Any) -> None:
        session.info.pop(_PENDING, None)
