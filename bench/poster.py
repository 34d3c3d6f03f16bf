"""Posts a question to each of many threads at once, from a process of its own.

The live part takes each token's arrival time on its own event loop; posting 100 questions
from that loop as well delayed those readings by the client's own work (its loop woke up to
a quarter of a second late during the posts). The people posting in a meeting are not the
subscriber either. This process connects first, then waits for a line on stdin, posts to
every thread at once, and prints the seconds the posts took.

    python -m bench.poster BASE_URL THREAD_ID...   (the API token in BENCH_TOKEN)
"""

import asyncio
import os
import sys
import time

import httpx


async def _post_all(base: str, token: str, thread_ids: list[int]) -> float:
    auth = {"Authorization": f"Bearer {token}"}
    count = len(thread_ids)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:
        # A request now opens a connection and imports what httpx needs on first use,
        # so the timed posts below do neither.
        (await client.get("/healthz")).raise_for_status()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.monotonic()
        await asyncio.gather(*(_post(client, auth, thread_id) for thread_id in thread_ids))
        return time.monotonic() - started


async def _post(client: httpx.AsyncClient, auth: dict[str, str], thread_id: int) -> None:
    body = {"content": "How does this fail?"}
    response = await client.post(f"/api/v1/threads/{thread_id}/messages", json=body, headers=auth)
    response.raise_for_status()


def main() -> None:
    base, *ids = sys.argv[1:]
    seconds = asyncio.run(_post_all(base, os.environ["BENCH_TOKEN"], [int(i) for i in ids]))
    print(f"{seconds:.6f}", flush=True)


if __name__ == "__main__":
    main()
