"""A recorded decision reaching the review pages of many people.

Each subscriber holds the review page's live stream (GET /projects/{id}/events, as a
browser does). Decisions are recorded one at a time through the API, possibly on another
server process; a decision's delay for one subscriber runs from just before its PUT to
the arrival of that item's region on that subscriber's stream.
"""

import asyncio
import time
from dataclasses import dataclass

import httpx

from bench.sse import Spread, events, spread

LAST_INITIAL_REGION = "meeting-banner"


@dataclass(frozen=True)
class FanoutResult:
    delays: Spread
    decisions: int
    missing: int  # deliveries that did not arrive within the limit


class Watcher:
    """One review page's stream; notes when each item's region arrives."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.arrivals: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def run(self, client: httpx.AsyncClient, url: str, cookie: str) -> None:
        async with client.stream("GET", url, headers={"Cookie": cookie}) as response:
            response.raise_for_status()
            async for event in events(response):
                if event.name == LAST_INITIAL_REGION:
                    self.ready.set()
                if self.ready.is_set():
                    self.arrivals[event.name] = event.received
                    self.changed.set()


async def _arrived(watcher: Watcher, region: str, limit_s: float) -> float | None:
    deadline = time.monotonic() + limit_s
    while region not in watcher.arrivals:
        watcher.changed.clear()
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            await asyncio.wait_for(watcher.changed.wait(), left)
        except TimeoutError:
            return None
    return watcher.arrivals[region]


async def run(
    *,
    watch_base: str,
    write_base: str,
    cookie: str,
    token: str,
    project_id: int,
    subscribers: int,
    decisions: int,
    limit_s: float = 10.0,
) -> FanoutResult:
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=subscribers + 10)
    async with (
        httpx.AsyncClient(base_url=watch_base, limits=limits, timeout=60) as watch,
        httpx.AsyncClient(base_url=write_base, timeout=60) as write,
    ):
        items = await _items(write, auth, project_id)
        watchers = [Watcher() for _ in range(subscribers)]
        url = f"/projects/{project_id}/events"
        tasks = [asyncio.create_task(w.run(watch, url, cookie)) for w in watchers]
        await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in watchers)), 60)
        delays: list[float] = []
        missing = 0
        for number in range(decisions):
            item_id, version = items[number % len(items)]
            region = f"item-{item_id}-state"
            for watcher in watchers:
                watcher.arrivals.pop(region, None)
            started = time.monotonic()
            revision = await _decide(write, auth, item_id, version, number)
            items[number % len(items)] = (item_id, revision)
            found = await asyncio.gather(*(_arrived(w, region, limit_s) for w in watchers))
            delays += [arrival - started for arrival in found if arrival is not None]
            missing += sum(1 for arrival in found if arrival is None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return FanoutResult(spread(delays), decisions, missing)


async def _items(
    client: httpx.AsyncClient, auth: dict[str, str], project_id: int
) -> list[tuple[int, int]]:
    """Each checklist item with the revision a new decision must name."""
    response = await client.get(f"/api/v1/projects/{project_id}/checklist", headers=auth)
    response.raise_for_status()
    found = []
    for entry in response.json():
        decision = entry["decision"]
        found.append((int(entry["id"]), int(decision["version"]) if decision else 0))
    return found


async def _decide(
    client: httpx.AsyncClient, auth: dict[str, str], item_id: int, version: int, number: int
) -> int:
    body = {
        "status": "decided",
        "summary": f"Fan-out decision {number}",
        "rationale": "Measured by the benchmark.",
        "version": version,
    }
    response = await client.put(
        f"/api/v1/checklist-items/{item_id}/decision", json=body, headers=auth
    )
    response.raise_for_status()
    return int(response.json()["version"])
