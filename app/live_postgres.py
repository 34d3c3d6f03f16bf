"""The PostgreSQL hub: every process's events reach every process's subscribers through
NOTIFY and one LISTEN connection per process (app/live.py has the rest).

Kept apart so that a SQLite deployment never imports psycopg.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import runners
from app.live import _PENDING, RESET, Event, LocalHub

log = logging.getLogger(__name__)

# NOTIFY payloads must stay under 8000 bytes; events carry ids, so this is generous.
MAX_PAYLOAD_BYTES = 7900
NOTIFY_CHANNEL = "designgate_live"
LISTENER_APPLICATION_NAME = "designgate-live"
SENDER_APPLICATION_NAME = "designgate-live-send"
LISTEN_POLL_S = 10.0
# How long the answer to "does another process listen?" is trusted before it is asked again.
PEER_CHECK_S = 1.0
RECONNECT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
# Every payload of a batch in one statement, one transaction: delivered together, in the
# order of the array. In psycopg's parameter style, for its own connections and SQLAlchemy's.
_NOTIFY_ALL = "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload"


def _payload(channel: str, item: Event, origin: str) -> str:
    """The NOTIFY payload; an oversized event is replaced by a reset of its channel."""
    # The origin first: a listener recognises its own process's events by this prefix
    # (_own_prefix) without parsing them.
    message = {"origin": origin, "channel": channel, "event": item}
    payload = json.dumps(message, separators=(",", ":"))
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        log.warning("live event on %s too large for NOTIFY; sending a reset", channel)
        reset = {"origin": origin, "channel": channel, "event": {"type": RESET}}
        payload = json.dumps(reset, separators=(",", ":"))
    return payload


class PostgresHub(LocalHub):
    """LISTEN/NOTIFY hub for several server processes on one PostgreSQL database.

    Events are NOTIFYed inside the announcing transaction (PostgreSQL delivers them
    only if it commits) and published to this process's subscribers once it has
    committed; one listener connection per process hands the other processes' events
    to local subscribers. After the listener reconnects, every subscriber gets a reset.
    """

    def __init__(self, engine: Engine, *, runner: int | None = None) -> None:
        super().__init__()
        self._engine = engine
        self._runner = runner
        # Marks this process's NOTIFY payloads, which its listener then skips.
        self.origin = uuid.uuid4().hex
        self._own_prefix = '{"origin":' + json.dumps(self.origin)
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
        # Streamed pieces not sent since the sender's connection failed (0: it works).
        self._unsent = 0
        # The backend of this hub's own listener, which does not count as another process.
        self._listener_pid = 0
        self._peers_checked_at = -PEER_CHECK_S
        self._peers_listen = True

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
            self.notify(connection, [(channel, item)])
        self.publish_here(channel, item)

    def publish_soon(self, channel: str, item: Event) -> None:
        """Deliver here at once and queue the event for the other processes: one task
        NOTIFYs whatever has queued up, in order, in one statement per batch on its own
        connection, so a burst of small events costs few round trips and never waits
        behind the thread pool's database work.

        Only streamed pieces of replies come here, and they need not reach anyone else when
        no other process listens: a process that starts listening within PEER_CHECK_S of
        the last check misses some, and its subscribers get that text from the reply's next
        save, as after any gap. With one server process this spared the event loop a
        NOTIFY and its echo for each of 500 pieces a second."""
        self.publish_here(channel, item)
        self._outbox.append((channel, item))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._notify_batch(batch)
            except (psycopg.Error, OSError) as exc:
                # Subscribers still get the text from the reply's next save. Warned once per
                # failure, not for each piece: a hundred replies stream 500 a second.
                if not self._unsent:
                    log.warning("could not send live events to other processes: %s", exc)
                self._unsent += len(batch)
                await self._close_sender()
                continue
            if self._unsent:
                log.warning("sending live events again; %d were not sent", self._unsent)
                self._unsent = 0

    async def _notify_batch(self, batch: list[tuple[str, Event]]) -> None:
        connection = self._sender_connection
        if connection is None or connection.closed:
            connection = self._sender_connection = await psycopg.AsyncConnection.connect(
                self._sender_conninfo, autocommit=True
            )
        if await self._others_listen(connection):
            await connection.execute(_NOTIFY_ALL, (NOTIFY_CHANNEL, self._payloads(batch)))

    async def _others_listen(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        """Whether another hub listens on this database, asked at most every PEER_CHECK_S."""
        now = time.monotonic()
        if now - self._peers_checked_at >= PEER_CHECK_S:
            cursor = await connection.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s AND pid <> %s)",
                (LISTENER_APPLICATION_NAME, self._listener_pid),
            )
            row = await cursor.fetchone()
            self._peers_listen = bool(row and row[0])
            self._peers_checked_at = now
        return self._peers_listen

    async def _close_sender(self) -> None:
        connection, self._sender_connection = self._sender_connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()

    def notify(self, connection: Connection, events: list[tuple[str, Event]]) -> None:
        """Queue NOTIFYs of ``events`` on this connection's transaction, in their order.

        One statement for them all: a save of 100 streaming replies announces 100 events,
        and one statement each was 100 round trips inside its write transaction."""
        connection.exec_driver_sql(_NOTIFY_ALL, (NOTIFY_CHANNEL, self._payloads(events)))

    def _payloads(self, events: list[tuple[str, Event]]) -> list[str]:
        return [_payload(channel, item, self.origin) for channel, item in events]

    def attach(self, factory: sessionmaker[Session]) -> None:
        """Also NOTIFY a session's queued events inside its committing transaction:
        PostgreSQL delivers them to the other processes only if the commit succeeds."""
        super().attach(factory)

        @event.listens_for(factory, "before_commit")
        def _notify(session: Session) -> None:
            if session.in_nested_transaction():
                return
            pending = session.info.get(_PENDING, [])
            if pending:
                self.notify(session.connection(), pending)

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
                    self._listener_pid = connection.info.backend_pid
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
        if payload.startswith(self._own_prefix):
            return  # delivered here when it was published
        try:
            message = json.loads(payload)
            channel, item = message["channel"], message["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed live payload")
            return
        self.publish_here(channel, item)
