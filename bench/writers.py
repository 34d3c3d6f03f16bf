"""Concurrent writers recording decisions: throughput, errors, and no acknowledged write lost.

Each writer owns its own checklist items and sends the revision it last wrote as
``version``, so a 409 (a stale base revision) is not expected; one is re-read, counted and
reported, never retried blindly. Every 2xx is an acknowledged write, and afterwards each one
must be in the database with the summary it was sent with.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sqlalchemy import create_engine, select

from app.config import normalise_database_url
from app.models import Decision


@dataclass
class WriterResult:
    seconds: float
    acknowledged: dict[tuple[int, int], str] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    locked_in_log: int = 0

    @property
    def writes_per_s(self) -> float:
        return len(self.acknowledged) / self.seconds


async def _writer(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    items: list[tuple[int, int]],
    name: str,
    until: float,
    result: WriterResult,
) -> None:
    versions = dict(items)
    number = 0
    while time.monotonic() < until:
        item_id = items[number % len(items)][0]
        summary = f"{name} write {number}"
        body = {
            "status": "decided",
            "summary": summary,
            "rationale": "Written by the benchmark.",
            "version": versions[item_id],
        }
        number += 1
        try:
            response = await client.put(
                f"/api/v1/checklist-items/{item_id}/decision", json=body, headers=auth
            )
        except httpx.HTTPError as exc:
            result.errors[type(exc).__name__] += 1
            continue
        if response.is_success:
            revision = int(response.json()["revision"])
            versions[item_id] = int(response.json()["version"])
            result.acknowledged[(item_id, revision)] = summary
            continue
        result.errors[str(response.status_code)] += 1
        if response.status_code == 409:
            versions[item_id] = await _current_version(client, auth, item_id)


async def _current_version(client: httpx.AsyncClient, auth: dict[str, str], item_id: int) -> int:
    response = await client.get(f"/api/v1/checklist-items/{item_id}/decisions", headers=auth)
    response.raise_for_status()
    revisions = response.json()["revisions"]
    return int(revisions[0]["version"]) if revisions else 0


async def run(
    base: str, token: str, project_id: int, *, writers: int, seconds: float
) -> WriterResult:
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=writers)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        response = await client.get(f"/api/v1/projects/{project_id}/checklist", headers=auth)
        response.raise_for_status()
        items = [
            (int(entry["id"]), int(entry["decision"]["version"]) if entry["decision"] else 0)
            for entry in response.json()
        ]
        result = WriterResult(seconds=seconds)
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(
            *(
                _writer(client, auth, items[number::writers], f"w{number}", until, result)
                for number in range(writers)
            )
        )
        result.seconds = time.monotonic() - started
    return result


def count_lost(database_url: str, acknowledged: dict[tuple[int, int], str]) -> int:
    """Acknowledged writes that are not in the database as they were sent."""
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Decision.item_id, Decision.revision, Decision.summary))
            stored = {(item_id, revision): summary for item_id, revision, summary in rows}
    finally:
        engine.dispose()
    return sum(1 for key, summary in acknowledged.items() if stored.get(key) != summary)
