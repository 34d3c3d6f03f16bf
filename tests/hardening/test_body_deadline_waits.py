"""The body deadline (app/http_protocol.py) counts the client's pauses, not the server's: an
app that takes its time before reading a body does not get its client's request cut, whether
uvicorn stopped reading meanwhile (more than 64 KiB arrived) or the client waits for
"100 Continue"; and the client's time starts when the server's wait ends. Served by uvicorn
with the protocol `designgate serve` uses, in this process, around an app that waits four
and a quarter deadlines before it reads."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from app import http_protocol
from app.http_protocol import with_deadlines
from tests.hardening.server import free_port, read_response

BODY_IDLE_TIMEOUT_S = 0.75
# Between two of the deadline's periods, so that one passes soon after the wait ends.
APP_WAITS_S = BODY_IDLE_TIMEOUT_S * 4.25


async def slow_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Waits, then reads the whole body and answers with its length."""
    await asyncio.sleep(APP_WAITS_S)
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    config = uvicorn.Config(
        slow_reader,
        host="127.0.0.1",
        port=free_port(),
        http=with_deadlines(10.0, BODY_IDLE_TIMEOUT_S),
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield config.port
    server.should_exit = True
    thread.join(10)


def _head(length: int, *extra: bytes) -> bytes:
    return b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n%s\r\n" % (
        length,
        b"".join(extra),
    )


def test_a_client_that_pauses_is_answered_408(port: int) -> None:
    # The deadline is on here: only the server's own waits are let through.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(_head(10) + b"12345")
        response = read_response(connection)
        assert response is not None
        assert response[0] == 408


def test_a_body_the_server_stopped_reading_is_not_cut(port: int) -> None:
    body = b"x" * (256 * 1024)  # uvicorn stops reading past 64 KiB until the app reads
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(_head(len(body)) + body)
        assert read_response(connection) == (200, "text/plain", str(len(body)).encode())


def test_a_client_waiting_for_100_continue_is_not_cut(port: int) -> None:
    body = b"y" * 1000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(_head(len(body), b"Expect: 100-continue\r\n"))
        # Sent once the app reads the body, four and a quarter deadlines from now.
        interim = read_response(connection)
        assert interim is not None
        assert interim[0] == 100
        # Within the deadline of the server's asking, but past the period that began before:
        # counted from that period's start, this client would be cut.
        time.sleep(BODY_IDLE_TIMEOUT_S * 0.9)
        connection.sendall(body)
        assert read_response(connection) == (200, "text/plain", b"1000")


def test_the_operator_is_warned_at_the_first_closed_connection_not_at_each(
    port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(http_protocol, "stalled", http_protocol.stalled_connections())
    caplog.set_level(logging.INFO, logger=http_protocol.__name__)
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(_head(10) + b"12345")
            response = read_response(connection)
            assert response is not None
            assert response[0] == 408
    records = [r for r in caplog.records if r.name == http_protocol.__name__]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the second within the minute waits for a later warning
    assert "1 with a request body paused too long" in warnings[0]
    assert sum(r.levelno == logging.INFO for r in records) == 2  # each one at INFO
