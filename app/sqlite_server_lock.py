"""One `designgate serve` per SQLite file.

A server on SQLite keeps its live events inside its own process, and at start it marks every
reply, generation and draft still unfinished in the database as interrupted, since on SQLite
nothing else can be writing them. A second server started on the same file (by mistake, or
a restart overlapping the old process) therefore marked the running server's replies as
interrupted while they were still being written. The second now stops before it touches the
database. The lock is the kernel's (``flock``): it goes with the process, however it ends, so
a server killed with SIGKILL is followed by a new one at once.
"""

import fcntl
import os
from pathlib import Path
from typing import IO

# Open for as long as the process lives: closing the file would let the lock go.
_held: list[IO[str]] = []


class AlreadyServed(Exception):
    """Another process holds the file's lock."""

    def __init__(self, lock_path: Path, holder: str) -> None:
        super().__init__(f"{lock_path} is held by process {holder or 'unknown'}")
        self.holder = holder


def lock_path_for(database: Path) -> Path:
    return database.with_name(database.name + ".serve-lock")


def hold(database: Path) -> None:
    """Take the lock beside ``database`` for this process, or raise ``AlreadyServed``."""
    lock_path = lock_path_for(database)
    try:
        handle = lock_path.open("a+", encoding="utf-8")
    except OSError:
        # A folder the lock cannot be made in (missing, read-only) is one SQLite cannot use
        # either: its own error, which names the database, follows.
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise AlreadyServed(lock_path, holder) from None
    # The holder's pid, for the message a second server gives; informative only.
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held.append(handle)
