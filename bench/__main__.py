"""Run the benchmarks: `make bench` (or `.venv/bin/python -m bench --help`).

Four parts, each on SQLite and on PostgreSQL, against real `designgate serve` processes:
throughput (ratios against baselines measured in the same run, by the same uvicorn with one
worker on the same database, because this machine is shared and noisy); live (many replies
streaming at once: each token's delay to its SSE subscriber, the review page meanwhile);
fanout (a recorded decision reaching many review pages, across two processes on
PostgreSQL); writers (concurrent decision writers: throughput, errors, no lost write). A fifth
needs no database and runs once: markdown (the slowest text to render against an ordinary
reply of the same length, in process).
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import migrate
from app.config import Settings, normalise_database_url
from app.db import Database
from bench import fanout, live_replies, load, markdown, seed, servers, writers
from bench.sse import verdict

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    server = subprocess.run(
        [str(ROOT / "scripts/test-postgres.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    admin = create_engine(normalise_database_url(server), isolation_level="AUTOCOMMIT")
    name = f"dg_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalise_database_url(server)).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def plain_line(result: load.Result, note: str = "") -> str:
    return (
        f"  {result.name:<28} {result.requests_per_s:>9.0f} req/s"
        f"  p99 {result.p99_ms:>7.1f} ms{note}"
    )


def ratio_line(
    result: load.Result,
    baseline: load.Result,
    target: float | None,
    p99_target: float | None = None,
) -> str:
    ratio = result.requests_per_s / baseline.requests_per_s
    p99_ratio = result.p99_ms / baseline.p99_ms if baseline.p99_ms else float("nan")
    misses = []
    if target is not None and ratio < target:
        misses.append(f"target {target:.0%}")
    if p99_target is not None and not p99_ratio <= p99_target:
        misses.append(f"p99 target x{p99_target:.0f}")
    verdict = ""
    if target is not None or p99_target is not None:
        verdict = f"  MISSED ({', '.join(misses)})" if misses else "  met"
    errors = f"  non-2xx {result.non_2xx}" if result.non_2xx else ""
    return plain_line(
        result, f"  = {ratio:>5.0%} of one-row, p99 x{p99_ratio:.1f}{verdict}{errors}"
    )


@contextmanager
def seeded(kind: str) -> Iterator[tuple[str, int, str]]:
    """A scratch database with the seeded project: its URL, the project id and an API token."""
    with scratch_database(kind) as url:
        migrate.upgrade(url)
        db = Database(Settings(database_url=url))
        project_id, token = seed.seed(db)
        db.dispose()
        yield url, project_id, token


def app_env(url: str) -> dict[str, str]:
    return {"DESIGNGATE_DATABASE_URL": url, "DESIGNGATE_LLM_WARMUP": "false"}


# Starts timed one after another: a single start is one sample of a shared, noisy machine
# (the same code took 0.97 to 1.76 s as the first server of a run).
STARTS = 5
STARTUP_TARGET_S = 1.5


def start_ups(env: dict[str, str]) -> list[float]:
    """Seconds from each `designgate serve` until /healthz answers."""
    seconds = []
    for _ in range(STARTS):
        with servers.serve(servers.designgate_command(), env, "/healthz") as (_base, up_s, _pid):
            seconds.append(up_s)
    return seconds


def start_up_line(seconds: list[float]) -> str:
    median = statistics.median(seconds)
    verdict = "met" if median <= STARTUP_TARGET_S else "MISSED"
    each = ", ".join(f"{s:.2f}" for s in seconds)
    return (
        f"  start-up until /healthz answers, {len(seconds)} starts: median {median:.2f} s,"
        f" slowest {max(seconds):.2f} s ({each})  {verdict} (target {STARTUP_TARGET_S} s)"
    )


def bench_throughput(kind: str, seconds: int, connections: int) -> None:
    with seeded(kind) as (url, project_id, token):
        env = app_env(url)
        print(f"\n== throughput, {kind} ({url.split('@')[-1]})")
        starts = start_ups(env)

        def measure(name: str, url: str, headers: dict[str, str] | None = None) -> load.Result:
            return load.run_wrk(
                name, url, seconds=seconds, connections=connections, headers=headers
            )

        with servers.serve(servers.baseline_command(), env, "/hello") as (base, _s, _pid):
            hello = measure("bare JSON endpoint", base + "/hello")
            one_row = measure("one-row ORM select", base + "/one-row")
        with servers.serve(servers.designgate_command(), env, "/healthz") as (base, _up, pid):
            rss = servers.rss_mb(pid)
            auth = {"Authorization": f"Bearer {token}"}
            project = f"{base}/api/v1/projects/{project_id}"
            gate = measure("gate check (API)", project + "/gate", auth)
            checklist = measure("checklist (API, 60 items)", project + "/checklist", auth)
            cookie = {"Cookie": servers.session_cookie(base, seed.EMAIL, seed.PASSWORD)}
            review = measure("review page (HTML)", f"{base}/projects/{project_id}", cookie)
        print(plain_line(hello))
        print(plain_line(one_row, "  (baseline)"))
        print(ratio_line(gate, one_row, 0.70))
        print(ratio_line(checklist, one_row, None))
        print(ratio_line(review, one_row, 0.50, p99_target=3.0))
        print(start_up_line(starts))
        print(f"  RSS after start-up, before any model call: {rss:.0f} MB (target < 120 MB)")


def bench_live(kind: str, args: argparse.Namespace) -> None:
    rate = args.replies * 1000 / args.token_interval_ms
    print(
        f"\n== {args.replies} streamed replies at once, {args.tokens} tokens each, one every"
        f" {args.token_interval_ms:.0f} ms ({rate:.0f} tokens/s in all), {kind}  ({load_note()})"
    )
    with (
        seeded(kind) as (url, project_id, token),
        servers.stamped_model_server(args.tokens, args.token_interval_ms) as api_base,
    ):
        env = {
            **app_env(url),
            "DESIGNGATE_MODEL": "openai/bench",
            "DESIGNGATE_LLM_API_BASE": api_base,
            "DESIGNGATE_LLM_API_KEY": "bench-key",
        }
        log = Path(os.environ.get("BENCH_SERVER_LOG", os.devnull))
        with servers.serve(servers.designgate_command(), env, "/healthz", log) as (base, _s, pid):
            cookie = servers.session_cookie(base, seed.EMAIL, seed.PASSWORD)
            found = asyncio.run(
                live_replies.run(
                    base,
                    token,
                    cookie,
                    project_id,
                    replies=args.replies,
                    tokens=args.tokens,
                    interval_ms=args.token_interval_ms,
                    page_seconds=args.seconds,
                    server_cpu_s=lambda: (
                        servers.cpu_seconds(pid),
                        servers.children_cpu_seconds(pid),
                    ),
                )
            )
            rss = servers.rss_mb(pid)
            model_rss = sum(servers.rss_mb(child) for child in servers.children(pid))
    tokens = found.tokens
    print(
        f"  tokens seen {tokens.count} of {found.expected_tokens}; replies complete"
        f" {found.replies_complete} of {args.replies} in {found.stream_s:.1f} s"
        f" (the {args.replies} posts took {found.posted_s:.1f} s)"
    )
    met = tokens.p99_ms <= 50 and tokens.count == found.expected_tokens
    print(f"  token, model send -> SSE subscriber: {tokens.line()}  {verdict(met)} (p99 50 ms)")
    later = found.later_tokens
    print(f"    while every reply was streaming: {later.line()}")
    print(f"    the benchmark's own event loop woke late by: {found.client_lag.line()}")
    busy_cores = found.server_cpu_s / found.stream_s
    print(
        f"  server CPU from the first post to the last reply: {found.server_cpu_s:.1f} s in"
        f" {found.stream_s:.1f} s = {busy_cores:.2f} cores busy (the page load included);"
        f" {found.server_cpu_s * 1000 / max(tokens.count, 1):.2f} ms per token"
    )
    model_cores = found.model_process_cpu_s / found.stream_s
    print(
        f"  its model process (litellm) meanwhile: {found.model_process_cpu_s:.1f} s ="
        f" {model_cores:.2f} cores busy;"
        f" {found.model_process_cpu_s * 1000 / max(tokens.count, 1):.2f} ms per token"
    )
    print(f"  RSS after the replies: server {rss:.0f} MB, its model process {model_rss:.0f} MB")
    idle = found.page_idle
    print(f"  review page idle:      p99 {idle.p99_ms:.1f} ms ({idle.requests_per_s:.0f} req/s)")
    print(page_window_line("while the replies start", found.page_starting, idle))
    print(page_window_line("while every reply streams", found.page_streaming, idle))


def page_window_line(window: str, result: load.Result | None, idle: load.Result) -> str:
    """The review page's p99 in one window of the live part, against its idle p99."""
    if result is None or result.requests == 0:
        return f"  review page {window}: no load finished (--tokens makes it longer)"
    ratio = result.p99_ms / idle.p99_ms
    # Fewer loads than this and the p99 is the slowest one or two: shown, but not judged.
    judged = f"{verdict(ratio <= 3)} (x3)" if result.requests >= 100 else "too few loads to judge"
    return (
        f"  review page {window}: p99 {result.p99_ms:.1f} ms ({result.requests_per_s:.0f}"
        f" req/s, {result.requests} loads) = x{ratio:.1f} idle  {judged}"
    )


def bench_fanout(kind: str, args: argparse.Namespace) -> None:
    processes = [1, 2] if kind == "postgres" else [1]
    with seeded(kind) as (url, project_id, token):
        for count in processes:
            where = "one process" if count == 1 else "written on A, watched on B"
            print(
                f"\n== a decision to {args.subscribers} review pages, {kind}, {where}"
                f"  ({load_note()})"
            )
            with contextlib.ExitStack() as stack:
                bases = [
                    stack.enter_context(
                        servers.serve(servers.designgate_command(), app_env(url), "/healthz")
                    )[0]
                    for _ in range(count)
                ]
                cookie = servers.session_cookie(bases[-1], seed.EMAIL, seed.PASSWORD)
                found = asyncio.run(
                    fanout.run(
                        watch_base=bases[-1],
                        write_base=bases[0],
                        cookie=cookie,
                        token=token,
                        project_id=project_id,
                        subscribers=args.subscribers,
                        decisions=args.decisions,
                    )
                )
            met = found.delays.p99_ms <= 250 and found.missing == 0
            print(
                f"  {found.decisions} decisions, PUT -> region on each stream:"
                f" {found.delays.line()}  {verdict(met)} (p99 250 ms)"
            )
            if found.missing:
                print(f"  deliveries missing after 10 s: {found.missing}")


def bench_writers(kind: str, args: argparse.Namespace) -> None:
    seconds = args.seconds * 3
    print(f"\n== {args.writers} writers for {seconds} s, {kind}  ({load_note()})")
    with seeded(kind) as (url, project_id, token), tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        command = servers.designgate_command()
        with servers.serve(command, app_env(url), "/healthz", log=log) as (base, _s, _pid):
            found = asyncio.run(
                writers.run(base, token, project_id, writers=args.writers, seconds=seconds)
            )
        found.lost = writers.count_lost(url, found.acknowledged)
        found.locked_in_log = log.read_text(errors="replace").count("database is locked")
    errors = ", ".join(f"{key}: {n}" for key, n in sorted(found.errors.items())) or "none"
    print(
        f"  acknowledged writes {len(found.acknowledged)} ({found.writes_per_s:.0f}/s);"
        f" errors {errors}"
    )
    print(f"  lost acknowledged writes: {found.lost}  {verdict(found.lost == 0)} (0)")
    print(
        f"  'database is locked' in the server's log: {found.locked_in_log}"
        f"  {verdict(found.locked_in_log == 0)} (0)"
    )


def load_note() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


PARTS = ("throughput", "live", "fanout", "writers", "markdown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--only", choices=PARTS, action="append", help="run only this part (repeatable)"
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=10,
        help="each wrk run and the idle review page; the writers run three times as long",
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--replies", type=int, default=100, help="live: replies streaming at once")
    parser.add_argument("--tokens", type=int, default=30, help="live: tokens per reply")
    # 5 tokens/s per reply, 500/s in all: litellm's parsing of each streamed chunk costs about
    # a millisecond of CPU here, so one process on this 2-core machine cannot take 2000/s.
    parser.add_argument("--token-interval-ms", type=float, default=200, help="live: between tokens")
    parser.add_argument("--subscribers", type=int, default=50, help="fanout: review pages")
    parser.add_argument("--decisions", type=int, default=50, help="fanout: decisions recorded")
    parser.add_argument("--writers", type=int, default=20, help="writers: concurrent writers")
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    if not load.wrk_available() and {"throughput", "live"} & set(parts):
        raise SystemExit("wrk is not installed (make bench installs Debian's wrk)")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "markdown" in parts:  # no database: once
        print("== rendering a message's Markdown (median of 3)", flush=True)
        print("\n".join(markdown.run()), flush=True)
    for kind in kinds:
        if "throughput" in parts:
            bench_throughput(kind, args.seconds, args.connections)
        if "live" in parts:
            bench_live(kind, args)
        if "fanout" in parts:
            bench_fanout(kind, args)
        if "writers" in parts:
            bench_writers(kind, args)


if __name__ == "__main__":
    main()
