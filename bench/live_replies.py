"""Many replies streaming at once: how late each token reaches its SSE subscriber, and how
the review page holds up meanwhile.

One thread per reply, one subscriber per thread on GET /api/v1/threads/{id}/events. The
model server (bench/stamped_llm.py) writes its send time into each token, so a token's
latency is its arrival at the subscriber minus that stamp, on the one monotonic clock.
"""

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bench import load
from bench.servers import ROOT
from bench.sse import Spread, events, spread
from bench.stamped_llm import stamps


@dataclass(frozen=True)
class LiveResult:
    tokens: Spread
    later_tokens: Spread
    expected_tokens: int
    replies_complete: int
    page_idle: load.Result
    page_starting: load.Result  # from the first post until every post was answered
    page_streaming: load.Result | None  # from then until the first reply ended, if it had not
    stream_s: float
    posted_s: float  # until every reply's POST was answered
    client_lag: Spread  # how late this benchmark's own event loop woke up meanwhile
    server_cpu_s: float  # CPU the server used from the first post until the replies ended
    model_process_cpu_s: float  # and its model process (litellm), in the same time


class Subscriber:
    """One thread's stream: records each token's latency the first time it is seen."""

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.seen: set[float] = set()
        self.tokens: list[tuple[float, float]] = []  # (sent, received)
        self.finished_at = float("inf")
        self.done = asyncio.Event()
        self.ready = asyncio.Event()

    async def run(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        url = f"/api/v1/threads/{self.thread_id}/events"
        request = client.build_request("GET", url, headers=headers)
        response = await client.send(request, stream=True)
        try:
            response.raise_for_status()
            self.ready.set()
            async for event in events(response):
                self._take(event.name, event.json(), event.received)
                if self.done.is_set():
                    return
        finally:
            await response.aclose()

    def _take(self, name: str, data: dict[str, object], received: float) -> None:
        text = str(data.get("delta", "")) if name == "delta" else str(data.get("content", ""))
        for sent in stamps(text):
            if sent not in self.seen:
                self.seen.add(sent)
                self.tokens.append((sent, received))
        finished = data.get("status") not in (None, "streaming")
        if name == "message" and data.get("role") == "assistant" and finished:
            self.finished_at = received
            self.done.set()


class Poster:
    """bench/poster.py in a process of its own, connected and waiting to post to every
    thread at once: the arrival times taken on this loop are not delayed by the posting."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, base: str, token: str, thread_ids: list[int]) -> "Poster":
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.poster",
            base,
            *(str(thread_id) for thread_id in thread_ids),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "BENCH_TOKEN": token},
        )
        poster = cls(process)
        if await poster._line() != "ready":
            raise RuntimeError(f"the poster exited with {await process.wait()}")
        return poster

    async def post_all(self) -> float:
        """Posts now; returns the seconds until every post was answered."""
        assert self._process.stdin is not None
        self._process.stdin.write(b"go\n")
        await self._process.stdin.drain()
        seconds = await self._line()
        if await self._process.wait() != 0 or not seconds:
            raise RuntimeError(f"the poster failed (exit code {self._process.returncode})")
        return float(seconds)

    async def _line(self) -> str:
        assert self._process.stdout is not None
        return (await self._process.stdout.readline()).decode().strip()


async def create_threads(
    client: httpx.AsyncClient, auth: dict[str, str], project_id: int, count: int
) -> list[int]:
    ids = []
    for number in range(count):
        body = {"mode": "open", "title": f"Live {number}"}
        response = await client.post(
            f"/api/v1/projects/{project_id}/threads", json=body, headers=auth
        )
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
    return ids


class PageWindows:
    """One browser reloading the review page back to back (wrk, one connection) in two
    windows: while the replies start (each post is a write the page shows, so it is
    rendered afresh) and while every reply streams (their text is not on the page)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._url = url
        self._headers = headers
        self._running: load.Running | None = None
        self.starting: load.Result | None = None
        self.streaming: load.Result | None = None

    async def posts_started(self) -> None:
        self._running = await asyncio.to_thread(self._start, "review page, replies starting")

    async def posts_answered(self) -> None:
        self.starting = await asyncio.to_thread(self._switch, "review page, streaming")

    async def first_reply_ended(self) -> None:
        if self._running is not None:
            self.streaming = await asyncio.to_thread(self._running.stop)
            self._running = None

    def close(self) -> None:
        """Stop a window left open by a failure: its wrk would otherwise load the machine,
        and every figure measured after it, until its ten-minute limit."""
        if self._running is not None:
            self._running.kill()
            self._running = None

    def _start(self, name: str) -> load.Running:
        return load.Running(name, self._url, headers=self._headers)

    def _switch(self, name: str) -> load.Result:
        assert self._running is not None
        result = self._running.stop()
        self._running = self._start(name)
        return result


async def stream_once(
    client: httpx.AsyncClient,
    token: str,
    thread_ids: list[int],
    limit_s: float,
    page: PageWindows | None = None,
) -> tuple[list[Subscriber], float, float]:
    """Subscribe to every thread, start every reply, wait until all finish (or ``limit_s``)."""
    auth = {"Authorization": f"Bearer {token}"}
    poster = await Poster.start(str(client.base_url).rstrip("/"), token, thread_ids)
    subscribers = [Subscriber(thread_id) for thread_id in thread_ids]
    # All at once, as a room full of people opening the page would.
    tasks = [asyncio.create_task(s.run(client, auth)) for s in subscribers]
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subscribers)), 30)
    await asyncio.sleep(0.5)  # the streams subscribe to the hub just after their headers
    if page is not None:
        await page.posts_started()
    started = time.monotonic()
    posted_s = await poster.post_all()
    watch = None
    if page is not None:
        await page.posts_answered()
        watch = asyncio.create_task(_end_on_first_reply(subscribers, page, limit_s))
    done = asyncio.gather(*(s.done.wait() for s in subscribers))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, limit_s)
    elapsed = time.monotonic() - started
    if watch is not None:
        await watch
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return subscribers, elapsed, posted_s


async def _end_on_first_reply(
    subscribers: list[Subscriber], page: PageWindows, limit_s: float
) -> None:
    """End the page's streaming window when the first reply ends, or at the limit if none does."""
    waits = [asyncio.create_task(s.done.wait()) for s in subscribers]
    try:
        await asyncio.wait(waits, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    await page.first_reply_ended()


async def run(
    base: str,
    token: str,
    cookie: str,
    project_id: int,
    *,
    replies: int,
    tokens: int,
    interval_ms: float,
    page_seconds: int,
    server_cpu_s: Callable[[], tuple[float, float]],
) -> LiveResult:
    """``server_cpu_s`` gives the CPU seconds of the server and of its model process."""
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=replies + 20, max_keepalive_connections=replies + 20)
    timeout = httpx.Timeout(60.0)
    page = f"{base}/projects/{project_id}"
    headers = {"Cookie": cookie}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        warm = await create_threads(client, auth, project_id, 1)
        await stream_once(client, token, warm, 60)  # litellm's import and first call
        thread_ids = await create_threads(client, auth, project_id, replies)
        # The page's first loads after the threads were made render it and its new rows.
        await asyncio.to_thread(_page_load, "review page, warming", page, 2, headers)
        idle = await asyncio.to_thread(_page_load, "review page, idle", page, page_seconds, headers)
        stream_s = tokens * interval_ms / 1000
        windows = PageWindows(page, headers)
        lags: list[float] = []
        watch = asyncio.create_task(_loop_lag(lags))
        cpu_before = server_cpu_s()
        try:
            subscribers, elapsed, posted_s = await stream_once(
                client, token, thread_ids, stream_s * 4 + 30, windows
            )
        finally:
            windows.close()
            watch.cancel()
        cpu_after = server_cpu_s()
    assert windows.starting is not None
    latencies = [received - sent for s in subscribers for sent, received in s.tokens]
    # From every reply's first token to the first reply's end, all of them are streaming:
    # no posts, no model calls being opened or wound up, which cost more than tokens do.
    all_streaming = max((min(s.tokens)[0] for s in subscribers if s.tokens), default=0.0)
    first_end = min(s.finished_at for s in subscribers)
    later = [
        received - sent
        for s in subscribers
        for sent, received in s.tokens
        if all_streaming < sent and received < first_end
    ]
    complete = sum(1 for s in subscribers if s.done.is_set())
    return LiveResult(
        spread(latencies),
        spread(later),
        replies * tokens,
        complete,
        idle,
        windows.starting,
        windows.streaming,
        elapsed,
        posted_s,
        spread(lags),
        cpu_after[0] - cpu_before[0],
        cpu_after[1] - cpu_before[1],
    )


async def _loop_lag(lags: list[float], period_s: float = 0.01) -> None:
    """Arrival times are taken on this loop: a late wake-up here inflates token delays."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(period_s)
        lags.append(max(0.0, time.monotonic() - before - period_s))


def _page_load(name: str, url: str, seconds: float, headers: dict[str, str]) -> load.Result:
    """One browser reloading the page back to back (wrk, one connection)."""
    return load.run_wrk(
        name, url, seconds=max(1, round(seconds)), connections=1, threads=1, headers=headers
    )
