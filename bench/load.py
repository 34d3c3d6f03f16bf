"""Load with wrk; parse its requests/s and p99."""

import re
import shutil
import signal
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_s: float
    p99_ms: float
    non_2xx: int
    requests: int


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
    command = _wrk_command(url, seconds, connections, threads, headers)
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    return _result(name, output)


class Running:
    """wrk started now and stopped by ``stop()``: its figures cover exactly that window,
    which the benchmark ends on an event (the last post answered, the first reply ended)
    rather than after a fixed time. wrk prints its figures when interrupted."""

    def __init__(
        self, name: str, url: str, *, connections: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        self.name = name
        # A time limit all the same, so a benchmark that fails leaves no wrk running for long.
        command = _wrk_command(url, 600, connections, 1, headers)
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def stop(self) -> Result:
        self._process.send_signal(signal.SIGINT)
        output, _ = self._process.communicate(timeout=30)
        return _result(self.name, output)

    def kill(self) -> None:
        """For a benchmark that failed: its figures are not wanted."""
        self._process.kill()
        self._process.communicate(timeout=30)


def _wrk_command(
    url: str, seconds: int, connections: int, threads: int, headers: dict[str, str] | None
) -> list[str]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    return [*command, url]


def _result(name: str, output: str) -> Result:
    requests = re.search(r"(\d+) requests in", output)
    count = int(requests.group(1)) if requests else 0
    return Result(name, _requests_per_s(output), _p99_ms(output), _non_2xx(output), count)


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
