"""Whether the sign-in that opened a live stream still holds, checked without a query per event.

A stream checks its cookie session or API token when it opens. After that it re-checks only
when the holder's account changes (an ``account`` event on ``user:{id}``, announced when
their sessions end, their role changes or one of their tokens is revoked), when the hub may
have missed events (a reset), and otherwise at most every ``RECHECK_S``: a decision seen by
fifty open pages costs no extra statement, and a change made outside the app (an account
deactivated in the database) still ends its streams within that time.
"""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from app.errors import TooManyStreams
from app.live import RESET, Event

# The event type announced on a user's channel when what their sign-ins allow may have changed.
ACCOUNT = "account"
RECHECK_S = 60.0


def account_channel(user_id: int) -> str:
    return f"user:{user_id}"


class AccessWatch:
    """Re-checks a stream's sign-in with ``check`` (a short read, run on a worker thread)."""

    def __init__(self, user_id: int, check: Callable[[], bool]) -> None:
        self.channel = account_channel(user_id)
        self._check = check
        self._checked_at = time.monotonic()

    async def holds(self) -> bool:
        """Checked now."""
        self._checked_at = time.monotonic()
        return await asyncio.to_thread(self._check)

    async def holds_after(self, events: Iterable[Event]) -> bool:
        """Still holds, as far as ``events`` (just received) and the time since the last
        check tell; re-checked only when one of them calls for it."""
        due = time.monotonic() - self._checked_at >= RECHECK_S
        if due or any(event.get("type") in {ACCOUNT, RESET} for event in events):
            return await self.holds()
        return True


def without_account_events(events: list[Event]) -> list[Event]:
    """What a stream relays: account events concern only its watch."""
    return [event for event in events if event.get("type") != ACCOUNT]


class OpenStreams:
    """How many live event streams each user holds open in this process, up to ``per_user``.

    Used on the event loop only (the streams' dependencies), so no lock is needed."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: Counter[int] = Counter()

    @contextlib.contextmanager
    def one_more(self, user_id: int) -> Iterator[None]:
        """Held while a stream is open; refused with TooManyStreams past the limit."""
        if self._open[user_id] >= self.per_user:
            raise TooManyStreams(
                f"You have {self.per_user} live streams open on this server, the most one user"
                " may (DESIGNGATE_MAX_STREAMS_PER_USER): close some pages or event streams"
                " and try again"
            )
        self._open[user_id] += 1
        try:
            yield
        finally:
            self._open[user_id] -= 1
            if not self._open[user_id]:
                del self._open[user_id]
