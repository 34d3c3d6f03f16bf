"""Which server process runs a piece of unfinished work, and whether it is still there.

A streaming reply, a generation and a draft waiting for the model are run by the process
that created them, which records itself as their runner. When a server starts, work whose
runner has gone will never finish and is marked interrupted; work another live process is
running is left alone. On PostgreSQL, where several processes may serve one database, each
also sweeps while it serves (app/services/recovery.py): a process that dies leaves work that
the others mark, without waiting for a restart. Each server process holds an advisory lock
named by its runner number for as long as it lives (on its live-events listener connection),
so a runner is gone exactly when its lock can be taken: a process killed with SIGKILL loses
its connection, and its lock with it. SQLite serves one process: all unfinished work is left
behind when it starts.
"""

import secrets
from collections.abc import Collection

from sqlalchemy import ColumnElement, and_, case, false, func, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

# The session.info key the app's session factories carry their process's runner under.
RUNNER = "runner"
# The first of the two advisory lock keys (the second is the runner); the two-key form
# never collides with the one-key locks of sign-ins and first-run setup.
LOCK_CLASS = 0x6467


def new_runner() -> int:
    """A number for this process: random, so no two live processes share one."""
    return secrets.randbelow(2**31 - 2) + 1


def runner_of(session: Session) -> int | None:
    runner = session.info.get(RUNNER)
    return runner if isinstance(runner, int) else None


def left_behind(
    session: Session,
    runner: InstrumentedAttribute[int | None],
    unfinished: ColumnElement[bool],
    *,
    only: Collection[int] | None = None,
) -> ColumnElement[bool]:
    """Rows that are ``unfinished`` and whose runner is gone (or unknown); with ``only``,
    just the rows of those runners, and only if each is gone still.

    On PostgreSQL the lock test runs in the statement itself, only for unfinished rows (the
    CASE keeps it from running for the finished ones, which name many long-gone runners);
    a lock it takes is held until the transaction ends, which is all the test needs.
    """
    if only is not None:
        unfinished = and_(unfinished, runner.in_(only))
    if session.get_bind().dialect.name != "postgresql":
        return unfinished
    gone = or_(runner.is_(None), func.pg_try_advisory_xact_lock(LOCK_CLASS, runner))
    return case((unfinished, gone), else_=false())


def gone(session: Session, candidates: Collection[int]) -> set[int]:
    """Those of ``candidates`` whose lock is free: no live process holds it (PostgreSQL).

    The locks taken to tell are held until the transaction ends, so a process coming back
    meanwhile waits to take its own until this transaction's marks are committed."""
    return {
        runner
        for runner in candidates
        if session.scalar(func.pg_try_advisory_xact_lock(LOCK_CLASS, runner).select())
    }


def carries_on(stored: str, latest: str) -> bool:
    """Whether a returning process's ``latest`` text goes on from the ``stored`` text of work
    another process gave up meanwhile: kept in its place, nothing the model wrote is lost."""
    return len(latest) > len(stored) and latest.startswith(stored)
