"""Rendered review pages, kept while nothing they show has changed.

A review page reads the checklist, every thread's replies and the generations, and renders
them: several milliseconds, against well under one for what it costs to check whether any
of that changed (``review.page_revisions``, which database triggers keep). So a page is
rendered once per revision of its project and per viewer, and served again until the
revision moves; the page without its debates section is kept the same way, by the count of
the changes outside that section (app/web/projects.py).

The viewer is part of the key because the page carries their name, role and form token:
one person's page is never served to another.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

# Pages of about 80 KB: a few megabytes at most.
CAPACITY = 64
# How long a request waits for another's rendering of the same page before rendering itself.
RENDER_WAIT_S = 10.0


class PageKey(NamedTuple):
    project_id: int
    revision: int
    user_id: int
    user_name: str
    role: str
    csrf_token: str


@dataclass
class _Rendering:
    """A rendering under way, which requests for the same page wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    html: str | None = None


class RenderedPages:
    """A small least-recently-used map of keys to rendered HTML, safe across threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._pages: OrderedDict[PageKey, str] = OrderedDict()
        self._rendering: dict[PageKey, _Rendering] = {}
        self._lock = threading.Lock()

    def get_or_render(self, key: PageKey, render: Callable[[], str]) -> str:
        """The kept page, or ``render()`` kept. Requests for a page being rendered wait for
        that rendering instead of starting their own: a page opened by many tabs at once, or
        reloaded while it renders, costs one rendering."""
        with self._lock:
            found = self._pages.get(key)
            if found is not None:
                self._pages.move_to_end(key)
                return found
            waiting_for = self._rendering.get(key)
            if waiting_for is None:
                mine = self._rendering[key] = _Rendering()
        if waiting_for is None:
            return self._render(key, mine, render)
        waiting_for.done.wait(RENDER_WAIT_S)
        # If that rendering failed or is stuck, this request renders for itself.
        return waiting_for.html if waiting_for.html is not None else render()

    def _render(self, key: PageKey, mine: _Rendering, render: Callable[[], str]) -> str:
        try:
            html = mine.html = render()
        finally:
            with self._lock:
                del self._rendering[key]
                if mine.html is not None:
                    self._keep(key, mine.html)
            mine.done.set()
        return html

    def _keep(self, key: PageKey, html: str) -> None:
        self._pages[key] = html
        while len(self._pages) > self.capacity:
            self._pages.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pages)
