"""Rendered review pages, kept while nothing they show has changed.

A review page reads the checklist, every thread's replies and the generations, and renders
them: several milliseconds, against well under one for what it costs to check whether any
of that changed (``review.revision``, which database triggers keep). So a page is rendered
once per revision of its project and per viewer, and served again until the revision moves.

The viewer is part of the key because the page carries their name, role and form token:
one person's page is never served to another.
"""

import threading
from collections import OrderedDict
from typing import NamedTuple

# Pages of about 80 KB: a few megabytes at most.
CAPACITY = 64


class PageKey(NamedTuple):
    project_id: int
    revision: int
    user_id: int
    user_name: str
    role: str
    csrf_token: str


class RenderedPages:
    """A small least-recently-used map of keys to rendered HTML, safe across threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._pages: OrderedDict[PageKey, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: PageKey) -> str | None:
        with self._lock:
            found = self._pages.get(key)
            if found is not None:
                self._pages.move_to_end(key)
            return found

    def put(self, key: PageKey, html: str) -> None:
        with self._lock:
            self._pages[key] = html
            self._pages.move_to_end(key)
            while len(self._pages) > self.capacity:
                self._pages.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pages)
