"""Run the benchmarks: `make bench` (or `.venv/bin/python -m bench --help`).

Every figure is reported as a ratio against baselines measured in the same run, by the
same uvicorn with one worker on the same database, because this machine is shared and noisy.
"""

import argparse
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
from bench import load, seed, servers

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


def ratio_line(result: load.Result, baseline: load.Result, target: float | None) -> str:
    ratio = result.requests_per_s / baseline.requests_per_s
    p99_ratio = result.p99_ms / baseline.p99_ms if baseline.p99_ms else float("nan")
    verdict = ""
    if target is not None:
        verdict = "  met" if ratio >= target else f"  MISSED (target {target:.0%})"
    errors = f"  non-2xx {result.non_2xx}" if result.non_2xx else ""
    return plain_line(
        result, f"  = {ratio:>5.0%} of one-row, p99 x{p99_ratio:.1f}{verdict}{errors}"
    )


def bench_database(kind: str, seconds: int, connections: int) -> None:
    with scratch_database(kind) as url:
        migrate.upgrade(url)
        db = Database(Settings(database_url=url))
        project_id, token = seed.seed(db)
        db.dispose()
        env = {"DESIGNGATE_DATABASE_URL": url, "DESIGNGATE_LLM_WARMUP": "false"}
        print(f"\n== {kind} ({url.split('@')[-1]})")

        def measure(name: str, url: str, headers: dict[str, str] | None = None) -> load.Result:
            return load.run_wrk(
                name, url, seconds=seconds, connections=connections, headers=headers
            )

        with servers.serve(servers.baseline_command(), env, "/hello") as (base, _s, _pid):
            hello = measure("bare JSON endpoint", base + "/hello")
            one_row = measure("one-row ORM select", base + "/one-row")
        with servers.serve(servers.designgate_command(), env, "/healthz") as (base, up_s, pid):
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
        print(ratio_line(review, one_row, 0.50))
        print(f"  start-up until /healthz answers: {up_s:.2f} s (target 1.5 s)")
        print(f"  RSS after start-up, before any model call: {rss:.0f} MB (target < 120 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not load.wrk_available():
        raise SystemExit("wrk is not installed (make bench installs Debian's wrk)")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        bench_database(kind, args.seconds, args.connections)


if __name__ == "__main__":
    main()
