"""Renderings kept while what they show has not changed: a small least-recently-used map
whose keys name a revision, safe across threads.

A key holds the revision its rendering was made under (database triggers count a project's
changes, ``review.page_revisions``), so a change makes a new key and the old rendering is
never served again; it only waits to fall out of the map.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Renderings of about 80 KB: a few megabytes at most.
CAPACITY = 64
# How long a request waits for another's rendering of the same key before rendering itself.
RENDER_WAIT_S = 10.0


@dataclass
class _Rendering(Generic[V]):
    """A rendering under way, which requests for the same key wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None


class Kept(Generic[K, V]):
    """Renderings by key, at most ``capacity`` of them, the least recently used dropped."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._rendering: dict[K, _Rendering[V]] = {}
        self._lock = threading.Lock()

    def get_or_render(self, key: K, render: Callable[[], V]) -> V:
        """The kept rendering, or ``render()`` kept. Requests for a key being rendered wait
        for that rendering instead of starting their own: a page opened by many tabs at once,
        or reloaded while it renders, costs one rendering."""
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
            waiting_for = self._rendering.get(key)
            if waiting_for is None:
                mine = self._rendering[key] = _Rendering()
        if waiting_for is None:
            return self._render(key, mine, render)
        waiting_for.done.wait(RENDER_WAIT_S)
        # If that rendering failed or is stuck, this request renders for itself.
        return waiting_for.value if waiting_for.value is not None else render()

    def _render(self, key: K, mine: _Rendering[V], render: Callable[[], V]) -> V:
        try:
            value = mine.value = render()
        finally:
            with self._lock:
                del self._rendering[key]
                if mine.value is not None:
                    self._keep(key, mine.value)
            mine.done.set()
        return value

    def _keep(self, key: K, value: V) -> None:
        self._kept[key] = value
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
