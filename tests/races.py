"""Two writers at once: the second starts while the first one's transaction is still open."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.db import Database

Write = Callable[[Session], object]


def race(db: Database, first: Write, second: Write) -> BaseException | None:
    """Run ``first`` in an open transaction, start ``second`` in another thread, then commit
    the first. Returns what the second raised (None if it succeeded)."""
    outcome: list[BaseException | None] = []

    def run_second() -> None:
        try:
            with db.transaction() as session:
                second(session)
            outcome.append(None)
        except Exception as exc:  # the outcome is what the test asserts on
            outcome.append(exc)

    with db.writer() as session:
        first(session)
        thread = threading.Thread(target=run_second)
        thread.start()
        # Give the second writer time to read and block behind this transaction.
        thread.join(timeout=0.3)
        session.commit()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome[0]
