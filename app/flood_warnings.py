"""Warnings about events that come in floods under the very load, or attack, they are about."""

import logging
import math
import time
from collections import Counter

# At most one warning this often; the events between are counted in the next.
WARN_EVERY_S = 60.0


class FloodWarning:
    """One warning at the first event, then at most one every ``every_s``, each naming how
    many events of each kind came since the last. ``message`` holds one ``%s``: the counts."""

    def __init__(self, logger: logging.Logger, message: str, every_s: float = WARN_EVERY_S):
        self.logger = logger
        self.message = message
        self.every_s = every_s
        self.since_warning: Counter[str] = Counter()
        self.warned_at = -math.inf

    def count(self, kind: str) -> None:
        self.since_warning[kind] += 1
        now = time.monotonic()
        if now - self.warned_at < self.every_s:
            return
        self.warned_at = now
        counts = ", ".join(f"{count} {kind}" for kind, count in self.since_warning.items())
        self.logger.warning(self.message, counts)
        self.since_warning.clear()
