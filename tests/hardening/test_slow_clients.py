"""Clients that open connections and send their request slowly or not at all cannot hold
them: `designgate serve` closes a connection whose request headers are not complete within
DESIGNGATE_REQUEST_HEADER_TIMEOUT_S, and answers 408 and closes one whose request body pauses
for longer than DESIGNGATE_REQUEST_BODY_IDLE_TIMEOUT_S (app/http_protocol.py); a body that
keeps coming slowly (within the whole body's deadline, test_body_deadline.py), a response held
open and an idle keep-alive connection are not cut. An
import, whose body may be 64 MiB, is refused to anyone but an admin before its body is read."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.hardening.server import Server, designgate_env, read_response

HEADER_TIMEOUT_S = 0.5
BODY_IDLE_TIMEOUT_S = 1.0
# How long a test keeps trickling before it calls the connection held: far past the deadline.
GIVE_UP_S = 10.0


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = designgate_env(
        database_url,
        request_header_timeout_s=str(HEADER_TIMEOUT_S),
        request_body_idle_timeout_s=str(BODY_IDLE_TIMEOUT_S),
    )
    log = tmp_path_factory.mktemp("slow-clients") / "server.log"
    with Server(env, log) as running:
        yield running


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=GIVE_UP_S)


def _post_head(path: str, length: int, extra: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: designgate\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n" % (path.encode(), length, extra)
    )


def _closed_while_trickling(connection: socket.socket, line: bytes) -> bool:
    """Send ``line`` every 0.2 s until the server closes the connection (True) or answers or
    GIVE_UP_S passes (False)."""
    connection.settimeout(0.2)
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        try:
            connection.sendall(line)
            # Closed (b""), or an answer: the connection was not closed.
            return connection.recv(1024) == b""
        except TimeoutError:
            continue
        except ConnectionError:
            return True
    return False


def _status(response: tuple[int, str, bytes] | None) -> int | None:
    return None if response is None else response[0]


def test_headers_sent_a_line_at_a_time_are_cut_off(server: Server) -> None:
    with _connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: designgate\r\n")
        assert _closed_while_trickling(connection, b"X-Slow: one more line\r\n")


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with _connect(server) as connection:
        assert read_response(connection) is None


def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(
    server: Server,
) -> None:
    with _connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: designgate\r\n\r\n")
        assert _status(read_response(connection)) == 200
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: designgate\r\n")
        assert _closed_while_trickling(connection, b"X-Slow: one more line\r\n")


def test_a_slow_body_and_an_idle_kept_alive_connection_are_not_cut(server: Server) -> None:
    body = b'{"name": "slow"}'
    with _connect(server) as connection:
        # Idle past the header deadline (but within uvicorn's keep-alive) between requests.
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: designgate\r\n\r\n")
        assert _status(read_response(connection)) == 200
        time.sleep(HEADER_TIMEOUT_S * 3)
        connection.sendall(_post_head("/api/v1/projects", len(body)))
        for byte in body:  # 16 bytes over 3.2 s: past both deadlines, but never pausing long
            time.sleep(0.2)
            connection.sendall(bytes([byte]))
        assert _status(read_response(connection)) == 401


def test_the_server_still_answers_others_meanwhile(server: Server) -> None:
    with _connect(server) as held, server.client() as client:
        held.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert client.get("/healthz").status_code == 200


def test_a_body_that_stops_arriving_is_answered_408_and_closed(server: Server) -> None:
    with _connect(server) as connection:
        # Half of a 64 KiB body, then nothing: a client gone mid-upload.
        connection.sendall(_post_head("/api/v1/projects", 65536) + b"[" * 32768)
        response = read_response(connection)
        assert response is not None
        status, content_type, body = response
        assert (status, content_type) == (408, "application/problem+json")
        assert json.loads(body)["status"] == 408
        assert connection.recv(1024) == b""  # and closed


@pytest.mark.parametrize(
    ("caller", "status"), [("anonymous", 401), ("unknown token", 401), ("member", 403)]
)
def test_an_import_is_refused_before_its_body_arrives(
    server: Server, request: pytest.FixtureRequest, caller: str, status: int
) -> None:
    # An import may be 64 MiB; anyone else could otherwise make the server take that in
    # before hearing no. Only the head is sent: the answer must not wait for the body.
    token = {"anonymous": None, "unknown token": "not-a-token"}.get(caller)
    if caller == "member":
        token = request.getfixturevalue("member").token
    auth = b"" if token is None else b"Authorization: Bearer %s\r\n" % token.encode()
    head = _post_head("/api/v1/import", 60 * 1024 * 1024, auth)
    with _connect(server) as connection:
        connection.sendall(head)
        assert _status(read_response(connection)) == status
