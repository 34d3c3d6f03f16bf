"""A request's line and headers are bounded in size, not only in time: `designgate serve`
answers 431 problem+json and closes the connection once they exceed MAX_HEADER_BYTES
(app/http_protocol.py), whether they come as one long header, as many short ones or as a
header that never ends, and the app never sees the request. Headers just under the bound,
and requests after them on a connection kept alive, are served."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator

import pytest

from app.http_protocol import MAX_HEADER_BYTES
from tests.conftest import Actor
from tests.hardening.server import Server, designgate_env, read_response

GIVE_UP_S = 15.0
REFUSED = "Sent with huge headers"
SERVED = "Sent with headers under the bound"


def _body(name: str) -> bytes:
    return json.dumps({"name": name, "problem": "How large may headers be?"}).encode()


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("header-size") / "server.log"
    with Server(designgate_env(database_url), log) as running:
        yield running


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=GIVE_UP_S)


def _post(member: Actor, extra_headers: bytes, name: str = REFUSED) -> bytes:
    body = _body(name)
    return (
        b"POST /api/v1/projects HTTP/1.1\r\nHost: designgate\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n%s" % (member.token.encode(), len(body), extra_headers, body)
    )


def _project_names(server: Server, member: Actor) -> list[str]:
    with server.client(headers=member.headers) as http:
        response = http.get("/api/v1/projects")
        response.raise_for_status()
        return [project["name"] for project in response.json()]


def _assert_refused_and_closed(connection: socket.socket) -> None:
    response = read_response(connection)
    assert response is not None, "the connection was closed without an answer"
    status, content_type, body = response
    assert status == 431
    assert content_type == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 431
    assert str(MAX_HEADER_BYTES) in problem["detail"]
    assert connection.recv(1024) == b"", "the connection was kept open"


def _sent_until_closed(connection: socket.socket, data: bytes) -> None:
    """Send all of ``data``; a server that closes the connection meanwhile stops it early."""
    with contextlib.suppress(ConnectionError):
        connection.sendall(data)


@pytest.mark.parametrize(
    "extra_headers",
    [
        pytest.param(b"X-Long: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n", id="one-long-header"),
        pytest.param(b"X-Many: a\r\n" * (MAX_HEADER_BYTES // 11 + 1), id="many-short-headers"),
    ],
)
def test_headers_over_the_bound_are_refused_431_and_the_app_never_sees_the_request(
    server: Server, member: Actor, extra_headers: bytes
) -> None:
    with _connect(server) as connection:
        _sent_until_closed(connection, _post(member, extra_headers))
        _assert_refused_and_closed(connection)
    assert REFUSED not in _project_names(server, member)


def test_a_header_that_never_ends_is_refused_once_past_the_bound(
    server: Server, member: Actor
) -> None:
    """Without the bound the server buffered it until the header deadline (10 s), however
    long it got; now it stops reading once the bound is passed."""
    with _connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: designgate\r\nX-Endless: ")
        for _ in range(MAX_HEADER_BYTES // 4096 + 2):
            _sent_until_closed(connection, b"a" * 4096)
        _assert_refused_and_closed(connection)


def test_headers_under_the_bound_are_served_and_so_is_the_next_request(
    server: Server, member: Actor
) -> None:
    under = b"X-Long: " + b"a" * (MAX_HEADER_BYTES - 2048) + b"\r\n"
    with _connect(server) as connection:
        connection.sendall(_post(member, under, SERVED))
        first = read_response(connection)
        assert first is not None
        assert first[0] == 201
        connection.sendall(_post(member, b"", SERVED))  # the same connection, kept alive
        second = read_response(connection)
        assert second is not None
        assert second[0] == 201
    assert _project_names(server, member).count(SERVED) == 2
