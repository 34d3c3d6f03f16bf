"""Load with wrk; parse its requests/s and p99."""

import re
import shutil
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_s: float
    p99_ms: float
    non_2xx: int


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    name: str,
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    threads: int = 2,
) -> Result:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    return Result(name, _requests_per_s(output), _p99_ms(output), _non_2xx(output))


def _requests_per_s(output: str) -> float:
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    return float(match.group(1))


def _p99_ms(output: str) -> float:
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    if not match:
        raise ValueError(f"no 99% latency in wrk output:\n{output}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _non_2xx(output: str) -> int:
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return int(match.group(1)) if match else 0
