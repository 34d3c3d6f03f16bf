"""The model's work running in this process: replies and generations being written.

A server that stops (SIGTERM) cancels what its requests still run, their background work
included, then closes the database. Cancelled, a reply or a generation stores the text it
has, marked interrupted; but that save takes a moment, and if the database is closed first
it is lost: the row stays streaming with the text of its last periodic save. So the app's
shutdown waits for that work (``stop``) before it closes the database.
"""

import asyncio
import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)
# The tasks running model work; a task leaves the set when its work ends (or it is gone).
_running: "weakref.WeakSet[asyncio.Task[Any]]" = weakref.WeakSet()


@contextmanager
def running() -> Iterator[None]:
    """Count the current task as model work while the block runs: the whole of a request's
    background work. A cancellation that reaches here is the server stopping, after the work
    stored what it had; it ends the work quietly (raised on, the server would log it as an
    exception in the request)."""
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
    try:
        yield
    except asyncio.CancelledError:
        log.info("model work stopped with the server")
    finally:
        if task is not None:
            _running.discard(task)


async def stop(timeout_s: float) -> None:
    """Cancel this event loop's model work, unless the server already did, and wait up to
    ``timeout_s`` for each to store its outcome."""
    loop = asyncio.get_running_loop()
    tasks = {task for task in _running if task.get_loop() is loop and not task.done()}
    if not tasks:
        return
    for task in tasks:
        # Cancelled twice, a task stops waiting for the save it shields from the first.
        if not task.cancelling():
            task.cancel()
    _done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    if pending:
        log.warning(
            "%d model call(s) had not stored their text %.0f s after the stop; what they"
            " saved before it is kept, and they are marked interrupted at the next start",
            len(pending),
            timeout_s,
        )
