"""A small server-sent-events reader over httpx, and percentile figures."""

import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    name: str
    data: str
    received: float  # time.monotonic() when its last data line arrived

    def json(self) -> Any:
        return json.loads(self.data)


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """Each event of an open stream, stamped with its arrival time, until the stream ends."""
    name, data, received = "message", [], 0.0
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            received = time.monotonic()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif not line and data:
            yield Event(name, "\n".join(data), received)
            name, data = "message", []
        elif not line:
            name = "message"


@dataclass(frozen=True)
class Spread:
    """Figures of a sample, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def line(self) -> str:
        return (
            f"n={self.count}  p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms"
            f"  max {self.max_ms:.1f} ms"
        )


def spread(seconds: list[float]) -> Spread:
    """p50, p99 (nearest rank) and max of durations given in seconds."""
    if not seconds:
        return Spread(0, math.nan, math.nan, math.nan)
    ordered = sorted(seconds)

    def rank(fraction: float) -> float:
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * 1000

    return Spread(len(ordered), rank(0.50), rank(0.99), ordered[-1] * 1000)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"
