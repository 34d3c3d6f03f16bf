"""Start and stop the servers under test as real uvicorn processes."""

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    # The command name is in parentheses and may hold spaces: the fields follow its end.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    return (user + system) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes ``pid`` started that are still there (the model process)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def children_cpu_seconds(pid: int) -> float:
    total = 0.0
    for child in children(pid):
        with contextlib.suppress(FileNotFoundError):
            total += cpu_seconds(child)
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], limit_s: float = 30) -> float:
    """Seconds from now until ``url`` answers 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {limit_s} s")


@contextmanager
def serve(
    command: list[str], env: dict[str, str], health_path: str, log: Path | None = None
) -> Iterator[tuple[str, float, int]]:
    """Yields the base URL, the seconds until healthy and the server's pid.

    With ``log``, the server's stdout and stderr go to that file (to grep it afterwards).
    """
    port = free_port()
    full_env = {**os.environ, **env}
    with contextlib.ExitStack() as files:
        output: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            output = files.enter_context(log.open("ab"))
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=full_env,
            stdout=output,
            stderr=output,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            seconds = wait_until_healthy(base + health_path, process)
            yield base, seconds, process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def stamped_model_server(tokens: int, interval_ms: float) -> Iterator[str]:
    """The stamping model server (bench/stamped_llm.py) in its own process; yields its /v1 URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.stamped_llm",
            "--port",
            str(port),
            "--tokens",
            str(tokens),
            "--interval-ms",
            str(interval_ms),
        ],
        cwd=ROOT,
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], limit_s: float = 10) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if process.poll() is not None:
            raise RuntimeError(f"model server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"model server did not listen on {port} within {limit_s} s")


def session_cookie(base: str, email: str, password: str) -> str:
    """Sign in through the login form as a browser would; returns the Cookie header."""
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        form = client.get("/login").text
        match = re.search(r'name="csrf_token" value="([^"]+)"', form)
        if match is None:
            raise RuntimeError("the login page has no CSRF token")
        data = {"email": email, "password": password, "csrf_token": match.group(1)}
        client.post("/login", data=data).raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def designgate_command() -> list[str]:
    return [str(VENV_BIN / "designgate"), "serve"]


def baseline_command() -> list[str]:
    """Served as `designgate serve` serves the app: one worker, its access log on, no
    websockets, no proxy headers; only the application differs."""
    return [
        str(VENV_BIN / "uvicorn"),
        "bench.baseline_app:create_baseline_app",
        "--factory",
        "--ws",
        "none",
        "--no-proxy-headers",
    ]
