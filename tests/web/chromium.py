"""Debian's Chromium for the browser tests, and a bound on closing its contexts.

Closing a browser context sends Chromium ``Target.disposeBrowserContext``, which Playwright
waits on without a timeout. After a meeting test on a loaded machine Chromium once never
answered in a CI run, and again in a run of tests/web beside another job, where pytest's
faulthandler showed the main thread in ``BrowserContext.close``: the test had passed, and
its teardown waited until pytest-timeout failed it at 300 s. A close
that takes longer than CONTEXT_CLOSE_S now ends Chromium (every Chromium process this test
run started) with a warning, and the next test gets a new browser.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Error, Playwright

EXECUTABLE = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# A context closes in well under a second here; the bound leaves room for a loaded machine.
CONTEXT_CLOSE_S = 60.0


class ChromiumGone(UserWarning):
    """Chromium was ended because it did not close a context in time."""


class Chromium:
    """One browser for the test run, launched again if it had to be ended."""

    def __init__(self, playwright: Playwright) -> None:
        self._playwright = playwright
        self._browser: Browser | None = None

    def browser(self) -> Browser:
        if self._browser is None or not self._browser.is_connected():
            self._browser = self._playwright.chromium.launch(executable_path=EXECUTABLE, args=ARGS)
        return self._browser

    def close(self) -> None:
        if self._browser is not None and self._browser.is_connected():
            self._browser.close()


def close_context(context: BrowserContext, *, limit_s: float = CONTEXT_CLOSE_S) -> None:
    """Close ``context``; if Chromium has not closed it within ``limit_s``, end Chromium."""
    ended: list[int] = []
    watchdog = threading.Timer(limit_s, lambda: ended.extend(end_chromium()))
    watchdog.start()
    try:
        context.close()
    except Error:
        if not ended:
            raise  # a failure of its own, not the one that ending Chromium causes
    finally:
        watchdog.cancel()
    if ended:
        message = f"Chromium did not close a browser context in {limit_s:.0f} s and was ended"
        warnings.warn(f"{message} (processes {ended})", ChromiumGone, stacklevel=2)


def end_chromium() -> list[int]:
    """SIGKILL every Chromium process this test run started; returns their ids."""
    found = chromium_processes()
    for pid in found:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, signal.SIGKILL)
    return found


def chromium_processes() -> list[int]:
    """The Chromium processes descended from this one (through Playwright's driver)."""
    return [pid for pid in _descendants(os.getpid()) if _command(pid).startswith("chrom")]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The parent is the field after the name, which is in parentheses and may hold
            # spaces: read from the last ")".
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, waiting = [], [root]
    while waiting:
        for child in children.get(waiting.pop(), []):
            found.append(child)
            waiting.append(child)
    return found


def _command(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""
