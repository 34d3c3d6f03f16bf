"""One database read for every live stream that needs the same rows at once.

An event reaches every subscriber of its channel together: a reply finished in a thread that
fifty screens follow would be read fifty times, once by each stream. A stream joins a read
of the same key only if that read started after the stream's latest event arrived (so the
read includes the change the event announced); otherwise it starts a new one, which the
streams behind it join.
"""

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.db import Database

Key = TypeVar("Key")
Value = TypeVar("Value")
Shared = TypeVar("Shared")

# How long a finished read is kept for streams that come to it late; a read is only ever
# joined by streams whose event came before it started, so keeping it longer is never wrong,
# only more memory.
KEEP_S = 5.0


@dataclass
class _Read(Generic[Value]):
    started: float
    result: "asyncio.Future[Value]"


class SharedReads(Generic[Key, Value]):
    """``read(key)`` run in a worker thread, shared by the callers that may share it."""

    def __init__(self, read: Callable[[Key], Value]) -> None:
        self._read = read
        self._latest: dict[Key, _Read[Value]] = {}

    async def get(self, key: Key, *, fresh_after: float) -> Value:
        """The value of a read of ``key`` that started at ``fresh_after`` or later
        (``time.monotonic()``)."""
        entry = self._latest.get(key)
        if entry is None or entry.started < fresh_after or failed(entry.result):
            self._forget_old()
            started = time.monotonic()
            result = asyncio.ensure_future(asyncio.to_thread(self._read, key))
            entry = self._latest[key] = _Read(started, result)
        # Shielded: a stream that goes away while it waits does not cancel the others' read.
        return await asyncio.shield(entry.result)

    def _forget_old(self) -> None:
        before = time.monotonic() - KEEP_S
        for key in [k for k, e in self._latest.items() if e.started < before and e.result.done()]:
            del self._latest[key]


def failed(future: "asyncio.Future[Any]") -> bool:
    """Done without a value: a later caller reads again rather than share the failure."""
    return future.done() and (future.cancelled() or future.exception() is not None)


def per_database(make: Callable[[Database], Shared]) -> Callable[[Database], Shared]:
    """``make(db)`` once per database (an app has one; the tests make many), kept only
    while the database is."""
    made: weakref.WeakKeyDictionary[Database, Shared] = weakref.WeakKeyDictionary()

    def get(db: Database) -> Shared:
        found = made.get(db)
        if found is None:
            found = made[db] = make(db)
        return found

    return get
