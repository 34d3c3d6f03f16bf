"""Work left unfinished by a server process that is gone: marked, so nothing waits for it.

A streaming reply keeps its thread from taking the next question (409), a generation runs
"forever" on its page, a draft waits for proposals that will not come. Every server marks
what it finds left behind when it starts (``mark_left_behind``, from app/main.py). On
PostgreSQL several processes may serve one database, and one that dies while the others
go on would leave its work unfinished until some process restarts: so each process also
sweeps while it serves (``Sweeper``, every SWEEP_INTERVAL_S).

A runner's lock (app/runners.py) is also free while its process is cut off from the
database for a moment: its listener reconnects (within seconds, app/live_postgres.py) and
takes the lock again. So a sweep marks a runner's work only when the runner was already
gone at a sweep at least GONE_FOR_S before, and is gone still. A restart of PostgreSQL cuts
every process off at once: a server that starts just after one waits RECONNECT_WITHIN_S
before it marks anything (``mark_at_start_up``), or it would give up the work of servers
whose listeners have not yet connected again.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, union
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import runners
from app.db import Database
from app.models import Draft, Generation, Message
from app.services import debates, drafts, generation

SWEEP_INTERVAL_S = 20.0
# Far longer than a listener takes to reconnect (its back-off tops out at 10 s).
GONE_FOR_S = 60.0
# A listener tries again at most 10 s after its last attempt (app/live_postgres.py), so
# within 10 s of the database answering again; twice that.
RECONNECT_WITHIN_S = 20.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Marked:
    """How many of each kind of work were marked."""

    replies: int = 0
    generations: int = 0
    drafts: int = 0


def mark_left_behind(session: Session, *, only: set[int] | None = None) -> Marked:
    """Mark the unfinished work of runners that are gone: all of them, or those in ``only``."""
    return Marked(
        replies=debates.mark_interrupted(session, runners=only),
        generations=generation.mark_interrupted(session, runners=only),
        drafts=drafts.mark_interrupted(session, runners=only),
    )


@dataclass(frozen=True)
class StartUp:
    """What a starting server marked, and the runners whose work it marks only after
    RECONNECT_WITHIN_S, if they are gone still (``mark_at_start_up``)."""

    marked: Marked
    seem_gone: frozenset[int] = frozenset()


def mark_at_start_up(session: Session) -> StartUp:
    """Mark the work of every runner that is gone, unless PostgreSQL itself started less
    than GONE_FOR_S ago: its restart dropped every server's connection, and with it every
    runner's lock, so a live server whose listener has not yet connected again looks gone,
    and its work, marked now, would be given up under it. Those runners are only noted."""
    if not _database_started_recently(session):
        return StartUp(mark_left_behind(session))
    return StartUp(
        Marked(), frozenset(runners.gone(session, runners_with_unfinished_work(session)))
    )


def _database_started_recently(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    started = func.pg_postmaster_start_time()
    up_for_s = session.scalar(select(func.extract("epoch", func.now() - started)))
    return up_for_s is not None and up_for_s < GONE_FOR_S


async def mark_after_reconnecting(db: Database, seem_gone: frozenset[int]) -> None:
    """Start-up's marking of ``seem_gone``, RECONNECT_WITHIN_S later: of those gone still.
    Tried once; if the database is unavailable then, the sweeps mark them in their time."""
    log.warning(
        "the database started less than %d s ago: the work of server process(es) %s, which"
        " seem gone, is marked in %d s if they are gone still (a live one's listener may not"
        " have connected again yet)",
        GONE_FOR_S,
        sorted(seem_gone),
        RECONNECT_WITHIN_S,
    )
    await asyncio.sleep(RECONNECT_WITHIN_S)
    try:
        marked = await asyncio.to_thread(_mark_runners, db, seem_gone)
    except DBAPIError as exc:
        log.warning("marking work left behind failed: %s; the sweeps will", exc.orig)
        return
    log_marked(marked)


def _mark_runners(db: Database, only: frozenset[int]) -> Marked:
    with db.transaction() as session:
        return mark_left_behind(session, only=set(only))


def log_marked(marked: Marked, *, runners_gone: set[int] | None = None) -> None:
    of = f" (left by server process(es) {sorted(runners_gone)})" if runners_gone else ""
    if marked.generations:
        log.warning("marked %d unfinished generation(s) as interrupted%s", marked.generations, of)
    if marked.replies:
        log.warning("marked %d unfinished model replies as interrupted%s", marked.replies, of)
    if marked.drafts:
        log.warning("marked %d draft(s) left waiting for the model as ready%s", marked.drafts, of)


# Every runner named by unfinished work. Each part reads a partial index that holds only the
# unfinished rows (the models' ``__table_args__``; tests/perf/test_sweep_indexes.py).
UNFINISHED_WORK_RUNNERS = union(
    select(Message.runner).where(debates.STREAMING_REPLY),
    select(Generation.runner).where(generation.UNFINISHED),
    select(Draft.runner).where(drafts.WAITING),
)


def runners_with_unfinished_work(session: Session) -> set[int]:
    """Every runner named by unfinished work (one statement; the work is rarely much)."""
    return {runner for runner in session.scalars(UNFINISHED_WORK_RUNNERS) if runner is not None}


class Sweeper:
    """Marks the work of other server processes once they have been gone GONE_FOR_S."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.clock = clock
        # Runner -> when a sweep first found it gone (forgotten once it is seen alive).
        self.gone_since: dict[int, float] = {}

    def sweep(self) -> Marked:
        """One sweep, in one write transaction: what it marked."""
        with self.db.transaction() as session:
            candidates = runners_with_unfinished_work(session) - {self.db.runner}
            gone = runners.gone(session, candidates)
            now = self.clock()
            self.gone_since = {runner: self.gone_since.get(runner, now) for runner in gone}
            due = {r for r, since in self.gone_since.items() if now - since >= GONE_FOR_S}
            if not due:
                return Marked()
            marked = mark_left_behind(session, only=due)
        for runner in due:
            del self.gone_since[runner]
        log_marked(marked, runners_gone=due)
        return marked

    async def run(self) -> None:
        """Sweep every SWEEP_INTERVAL_S until cancelled; a failed sweep is tried again."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await asyncio.to_thread(self.sweep)
            except DBAPIError as exc:  # the database may be down a while: the next one retries
                log.warning("sweeping for work left behind failed: %s", exc.orig)
            except Exception:
                log.exception("sweeping for work left behind failed")
