"""Engine, sessions and the declarative base."""

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    create_engine,
    event,
    inspect,
    make_url,
)
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator

from app import runners
from app.config import Settings
from app.errors import ServerBusy
from app.flood_warnings import FloodWarning

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 10_000
# PostgreSQL waits for a lock for as long as it is held: a request behind another client's
# lock (an operator's LOCK TABLE, another server's long import or migration) held its worker
# thread and its turn at the database without end. As SQLite's busy timeout does, a wait this
# long now fails the statement, and the request is answered 503.
POSTGRES_LOCK_TIMEOUT_MS = SQLITE_BUSY_TIMEOUT_MS
POSTGRES_CONNECT_TIMEOUT_S = 5
# What PostgreSQL says to a write in a database that takes none: one set read-only, as managed
# services do when its storage is nearly full, or a standby a failover left behind.
READ_ONLY_SQLSTATE = "25006"
# Write requests take SQLite's write lock when their transaction starts, so two
# writers queue on busy_timeout instead of failing when a read lock is upgraded.
IMMEDIATE = "designgate_begin_immediate"
# Background work waits this long before trying the database again while it is unavailable,
# by attempt, the last repeated: PostgreSQL restarts in seconds, a failover takes longer.
UNAVAILABLE_RETRY_S = (0.5, 1.0, 2.0, 5.0)
log = logging.getLogger(__name__)
# Requests answered 503 for having waited their whole DESIGNGATE_REQUEST_QUEUE_TIMEOUT_S: each
# logged at INFO, and warned of once a minute at most, since they come by the hundred at once.
too_busy = FloodWarning(
    log,
    "answered 503 to requests that waited DESIGNGATE_REQUEST_QUEUE_TIMEOUT_S for the database"
    " (since the last such warning: %s)",
)
P = ParamSpec("P")
T = TypeVar("T")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@event.listens_for(Base, "init", propagate=True)
def _unset_columns_are_none(_target: Base, _args: Any, values: dict[str, Any]) -> None:
    """A nullable column left unset is inserted as NULL, but after the flush the new object
    does not hold it: reading it (a response built from the row just written) cost one
    SELECT per such column, about twenty for a posted question and its replies. Given as
    None up front, it is on the object; the INSERT writes the same NULL."""
    for key in _columns_null_unless_set(type(_target)):
        values.setdefault(key, None)


@functools.cache
def _columns_null_unless_set(model: type[Base]) -> tuple[str, ...]:
    """The nullable table columns with no default of their own, in Python or in the database."""
    keys = []
    for attribute in inspect(model).column_attrs:
        column = attribute.columns[0]
        if (
            isinstance(column, Column)
            and column.nullable
            and not column.primary_key
            and column.default is None
            and column.server_default is None
            and column.computed is None
            and column.identity is None
        ):
            keys.append(attribute.key)
    return tuple(keys)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite's own BEGIN handling is broken).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    writers = _WriterQueue()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get(IMMEDIATE, False):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        writers.enter(dbapi_connection)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.leave(dbapi_connection)
            raise

    # The turn ends once COMMIT or ROLLBACK has run (the pool's reset on return is a
    # rollback too), or with the connection. This engine has a dialect of its own.
    dialect = engine.dialect
    for end in ("do_commit", "do_rollback"):
        setattr(dialect, end, writers.leaving_after(getattr(dialect, end)))
    for gone in ("close", "invalidate", "soft_invalidate", "close_detached"):
        event.listen(
            engine.pool, gone, lambda dbapi_connection, *_: writers.leave(dbapi_connection)
        )


class _WriterQueue:
    """One write transaction at a time in this process, handed over the moment it ends.

    SQLite has one write lock. A writer that finds it taken sleeps in SQLite's busy handler,
    longer after every try (up to 100 ms), and does not wake when the lock is freed: with a
    hundred replies posted at once, posts waited seconds while the lock sat free most of the
    time. Writers of this process now queue on a lock of ours instead, which hands over at
    once; the busy handler is left for other processes (the CLI, a second server).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: Any = None

    def enter(self, dbapi_connection: Any) -> None:
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked")  # as SQLite would say
        self._holder = dbapi_connection

    def leave(self, connection: Any) -> None:
        """``connection``: the DBAPI connection, or the pool's proxy for it."""
        dbapi_connection = getattr(connection, "dbapi_connection", connection)
        if self._holder is not None and self._holder is dbapi_connection:
            self._holder = None
            self._lock.release()

    def leaving_after(self, end: Callable[[Any], None]) -> Callable[[Any], None]:
        """``end`` (commit or rollback) and then the next writer's turn."""

        def ended(dbapi_connection: Any) -> None:
            try:
                end(dbapi_connection)
            finally:
                self.leave(dbapi_connection)

        return ended


# Pooled connections per process (kept + overflow); requests are admitted to match. An
# overflow connection is closed when it comes back, so a steady load above the kept number
# opened and closed connections all the time (a tenth of a gate check's time on SQLite):
# keep as many as a busy server uses. On SQLite more is slower: its reads are short, and
# beyond a few at once their threads mostly wait to take the interpreter lock back. Four
# read slots instead of ten took the gate check from 55-63% to 79-92% of the one-row
# select (docs/BENCHMARKS.md); fifteen made it 40-48%. Fewer helped on PostgreSQL too:
# while 100 replies were posted at once, token p99 was 68-77 ms with 30 connections and
# 41-53 ms with 10 (four runs each), the gate and the page no slower; likely as on SQLite,
# the event loop relaying the tokens waited its turn for the interpreter lock among fewer.
SQLITE_POOL = (9, 0)
POSTGRES_POOL = (10, 0)
# Of those, how many requests may hold one at once to read, and how many to write; the
# rest are for background work (replies, event streams). Writes queued for SQLite's one
# write lock (and for row locks on PostgreSQL) while holding their slot: 100 replies posted
# at once took every slot, and every page waited seconds behind them. One write at a time:
# writes take turns anyway (SQLite's write lock; on PostgreSQL each commits its project's
# revision), and a write waiting on the event loop costs nothing, while one waiting in a
# worker thread takes turns with the page's threads for the interpreter lock. While 100
# replies were posted at once, one write slot instead of five took the review page's p99
# from 34-49 to 28-32 ms on SQLite and from 67-74 to 24-31 ms on PostgreSQL, token p99
# from 16-21 to 12-16 ms and from 32-46 to 12-24 ms; 20 writers wrote 215 against 188
# a second on SQLite and 141 against 151 on PostgreSQL (docs/BENCHMARKS.md).
SQLITE_READ_SLOTS = 4
POSTGRES_READ_SLOTS = 5
WRITE_SLOTS = 1


def make_engine(settings: Settings) -> Engine:
    url = settings.sqlalchemy_url
    if settings.is_sqlite:
        size, overflow = SQLITE_POOL
        # An in-memory database is one connection per thread (SingletonThreadPool), no queue.
        in_memory = make_url(url).database in (None, "", ":memory:")
        pool = {} if in_memory else {"pool_size": size, "max_overflow": overflow}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **pool
        )
        _configure_sqlite(engine)
        return engine
    size, overflow = POSTGRES_POOL
    engine = create_engine(_with_connect_timeout(url), pool_size=size, max_overflow=overflow)
    _configure_postgres(engine)
    _ping_after_idle(engine)
    return engine


def _with_connect_timeout(url: str) -> URL:
    """The URL with libpq's ``connect_timeout`` unless it names one itself.

    Without it a connection to a server that accepts and never answers (a wedged server, an
    address whose packets are dropped after a failover) waits for ever, or for the kernel's
    two minutes, holding the request's turn at the database. The live events' connections
    are made from the same URL, so they reconnect within it too.
    """
    parsed = make_url(url)
    if "connect_timeout" in parsed.query:
        return parsed
    return parsed.update_query_dict({"connect_timeout": str(POSTGRES_CONNECT_TIMEOUT_S)})


def _configure_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _read_only_is_unavailable(context: ExceptionContext) -> BaseException | None:
        """A write refused as read-only is the database unavailable, as SQLite's full disk
        is (503, and the model's saves wait), not a bug (500, and the saves given up)."""
        if getattr(context.original_exception, "sqlstate", None) != READ_ONLY_SQLSTATE:
            return None
        # Each session keeps the setting it started with: new connections, once it is lifted.
        context.is_disconnect = True
        return OperationalError(context.statement, context.parameters, context.original_exception)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Once per connection, outside any transaction: a SET inside one would be undone by
        # the rollback the pool makes when the connection is given back.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute(f"SET lock_timeout = {POSTGRES_LOCK_TIMEOUT_MS}")
        finally:
            dbapi_connection.autocommit = autocommit


# A PostgreSQL connection that has sat in the pool this long is pinged before it is used.
PING_AFTER_IDLE_S = 1.0
_CHECKED_IN_AT = "designgate_checked_in_at"


def _ping_after_idle(engine: Engine) -> None:
    """``pool_pre_ping``, for connections that have been idle only.

    A ping before every use was a round trip on every request (a tenth of the server's
    profile while 100 replies streamed); a connection given back a moment ago is as
    good as a ping. One idle longer, which the database may have dropped (a restart, an
    idle timeout, an operator), is pinged, and a failed ping invalidates the pool as
    ``pool_pre_ping``'s does. A connection that broke within the second fails its
    statement instead (503), and that error invalidates the pool just the same.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, connection, None):
                raise InvalidatePoolError() from error
            raise


class _Slots(NamedTuple):
    loop: asyncio.AbstractEventLoop
    read: asyncio.Semaphore
    write: asyncio.Semaphore


class Database:
    """The engine and the two session factories the app hands out."""

    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings)
        self.is_sqlite = settings.is_sqlite
        size, overflow = SQLITE_POOL if self.is_sqlite else POSTGRES_POOL
        self.pool_capacity = size + overflow
        self.write_slots = WRITE_SLOTS
        self.read_slots = SQLITE_READ_SLOTS if self.is_sqlite else POSTGRES_READ_SLOTS
        self.queue_timeout_s = settings.request_queue_timeout_s
        self._slots: _Slots | None = None
        # Work this process creates names it as its runner (app/runners.py).
        self.runner = runners.new_runner()
        info = {runners.RUNNER: self.runner}
        self.reader = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self.writer = sessionmaker(
            self.engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False, info=info
        )

    @contextmanager
    def reading_first(self, session: Session) -> Iterator[None]:
        """Run the block's reads in a transaction of their own, ended after it, before the
        writing one; for a write session (``writer``) whose first statements only read.

        On SQLite a write session takes the one write lock with its first statement. A
        request checks its caller before it writes, a thread-pool hop or two before its
        endpoint runs: the lock was held across those hops, which wait for the event loop,
        and writers queued behind idle locks. PostgreSQL takes nothing at BEGIN: no change.
        """
        if not self.is_sqlite:
            yield
            return
        session.connection(execution_options={IMMEDIATE: False})
        yield
        session.commit()  # objects stay loaded (expire_on_commit=False)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A unit of work outside a request: commit on success, roll back on error."""
        factory = self.writer if write else self.reader
        with factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reads(self) -> Iterator[Session]:
        """A read transaction, except that on PostgreSQL its statements run without one.

        At PostgreSQL's READ COMMITTED each statement of a transaction sees the commits
        before it, as it would alone, so a transaction that only reads gains nothing from
        BEGIN and its ROLLBACK or COMMIT: two round trips that the review page served
        again and the gate check (two statements each) paid on every request, and the live
        streams on every read. For reads only: a write here would commit statement by
        statement.
        """
        with self.transaction(write=False) as session:
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session

    def request_slots(self, *, write: bool = False) -> asyncio.Semaphore:
        """No more requests hold a session at once than the pool has connections.

        A request keeps its connection across several worker-thread hops (each sync
        dependency, the endpoint, the commit). With more of them admitted than there are
        connections, requests holding every connection waited for worker threads while every
        worker thread waited for a connection, until the pool's 30 s timeout: a burst of 100
        event streams opened at once did that. Reads and writes are admitted separately (see
        ``WRITE_SLOTS``), together never more than the pool holds. One pair of
        semaphores per event loop (tests run several loops in one process).
        """
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots.loop is not loop:
            self._slots = _Slots(
                loop, asyncio.Semaphore(self.read_slots), asyncio.Semaphore(self.write_slots)
            )
        return self._slots.write if write else self._slots.read

    @asynccontextmanager
    async def admitted(self, *, write: bool = False) -> AsyncIterator[None]:
        """The block holds one of the request slots (``request_slots``), waited for at most
        ``DESIGNGATE_REQUEST_QUEUE_TIMEOUT_S``; past it, ``ServerBusy`` (503 with Retry-After).

        Unbounded, a load the server cannot keep up with grew the queue without end, each
        waiting request holding its memory and its client, and answered callers long after
        they had given up.
        """
        slots = self.request_slots(write=write)
        if slots.locked():
            await self._queue_for(slots, write=write)
        else:
            await slots.acquire()  # taken at once, with no timer to set and cancel
        try:
            yield
        finally:
            slots.release()

    async def _queue_for(self, slots: asyncio.Semaphore, *, write: bool) -> None:
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await slots.acquire()
        except TimeoutError:
            kind = "waiting to write" if write else "waiting to read"
            log.info("answered 503 to a request %s for %g s", kind, self.queue_timeout_s)
            too_busy.count(kind)
            raise ServerBusy(
                f"The server is too busy to take this request now (it waited"
                f" {self.queue_timeout_s:g} s for the database); send it again shortly"
            ) from None

    def dispose(self) -> None:
        self.engine.dispose()


async def when_available(what: str, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work`` on a worker thread, tried again while the database is unavailable (the
    ``OperationalError`` a request answers 503 for), until it succeeds or the server stops.

    For the model's work, which runs after its request has been answered: a reply, a
    generation, a verdict or a draft that ends while PostgreSQL restarts exists only in this
    process. Stored a few seconds late, it is kept; given up, its text was lost and its row
    left streaming while this process lives (nothing marks a live process's work), so its
    thread refused every question. ``work`` must be a whole transaction: a failed one is
    rolled back, and the next attempt starts afresh. Any other error is raised at once, as is
    SQLite's for a statement it cannot run.
    """
    attempt = 0
    while True:
        try:
            result = await asyncio.to_thread(work, *args, **kwargs)
        except OperationalError as exc:
            if not is_outage(exc):
                raise
            if attempt == 0:
                log.warning(
                    "%s waits for the database, which is unavailable (%s); trying again until"
                    " it is back",
                    what,
                    outage_reason(exc),
                )
            await asyncio.sleep(UNAVAILABLE_RETRY_S[min(attempt, len(UNAVAILABLE_RETRY_S) - 1)])
            attempt += 1
            continue
        if attempt:
            log.warning("%s went on once the database was back", what)
        return result


def is_outage(exc: OperationalError) -> bool:
    """SQLite reports a statement it cannot run ("no such table") as an OperationalError too:
    a bug to raise, not an outage to wait out."""
    return getattr(exc.orig, "sqlite_errorcode", None) != sqlite3.SQLITE_ERROR


class OutageWarning:
    """One warning per outage for a save that fails and is simply made again later (the text
    it holds stays in memory), not one at every attempt."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.warned = False

    def failed(self, exc: OperationalError) -> None:
        if not is_outage(exc):
            # A statement SQLite cannot run is a bug, not an outage: its traceback, each time.
            log.error("could not save %s", self.what, exc_info=exc)
            return
        if not self.warned:
            log.warning(
                "could not save %s, the database is unavailable (%s); kept until it is back",
                self.what,
                outage_reason(exc),
            )
        self.warned = True

    def succeeded(self) -> None:
        self.warned = False


def outage_reason(exc: OperationalError) -> str:
    """The driver's first line: enough to tell a refused connection from a lock."""
    lines = str(exc.orig).strip().splitlines()
    return lines[0] if lines else type(exc.orig).__name__
