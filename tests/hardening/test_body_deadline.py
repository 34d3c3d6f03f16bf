"""A request body must arrive in full within DESIGNGATE_REQUEST_BODY_TIMEOUT_S of the app
asking for it (app/problems.py): a client trickling its body a byte at a time, never pausing
long enough for the idle deadline of app/http_protocol.py, is answered 408 (problem+json on
the API, a readable page on the pages), its connection closed and nothing written. A route
that takes more than DESIGNGATE_MAX_BODY_BYTES (an import) has that deadline for each
DESIGNGATE_MAX_BODY_BYTES it takes."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Actor
from tests.hardening.server import Server, designgate_env, read_response
from tests.hardening.web_helpers import PASSWORD, token_in

BODY_TIMEOUT_S = 1.0
# One byte this often: far more often than the idle deadline (30 s), so only the whole-body
# deadline can end the request.
TRICKLE_S = 0.2
# How long a test trickles before it calls the request held: far past every deadline here
# (a signed-in page's form has about 4.6 of them).
GIVE_UP_S = 15.0
ANNOUNCED = 100_000


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = designgate_env(database_url, request_body_timeout_s=str(BODY_TIMEOUT_S))
    log = tmp_path_factory.mktemp("body-deadline") / "server.log"
    with Server(env, log) as running:
        yield running


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {path} HTTP/1.1\r\nHost: designgate\r\n{lines}\r\n".encode()


def _trickle(connection: socket.socket, piece: bytes) -> bool:
    """Send ``piece`` every TRICKLE_S until the server has something to say (True), or
    GIVE_UP_S passes (False: the server still waits for the body)."""
    connection.settimeout(TRICKLE_S)
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        try:
            connection.sendall(piece)
            connection.recv(1, socket.MSG_PEEK)  # an answer, or the end of the connection
            return True
        except TimeoutError:
            continue
        except ConnectionError:
            return True
    return False


def _answer_to_trickled_body(
    server: Server, path: str, headers: dict[str, str], start: bytes, piece: bytes
) -> tuple[int, str, bytes]:
    """The response to a request whose body never ends arriving; asserts the connection is
    closed after it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=GIVE_UP_S) as connection:
        connection.sendall(_head(path, headers) + start)
        assert _trickle(connection, piece), "the server still waits for the body"
        connection.settimeout(GIVE_UP_S)
        response = read_response(connection)
        assert response is not None, "the connection was closed without an answer"
        assert _closed(connection), "the connection was kept open"
        return response


def _closed(connection: socket.socket) -> bool:
    """The server closed the connection: an end of stream, or a reset when bytes the client
    trickled in meanwhile were still unread on the server's side as it closed."""
    try:
        return connection.recv(1024) == b""
    except ConnectionResetError:
        return True


def _api_headers(member: Actor, chunked: bool) -> dict[str, str]:
    size = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(ANNOUNCED)}
    return {"Authorization": f"Bearer {member.token}", "Content-Type": "application/json", **size}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_api_body_trickled_past_the_deadline_is_answered_408_and_nothing_is_written(
    server: Server, member: Actor, chunked: bool
) -> None:
    start = b'{"name": "slow", "problem": "'
    piece = b"1\r\nx\r\n" if chunked else b"x"
    if chunked:
        start = b"%x\r\n%s\r\n" % (len(start), start)
    status, content_type, body = _answer_to_trickled_body(
        server, "/api/v1/projects", _api_headers(member, chunked), start, piece
    )

    assert (status, content_type) == (408, "application/problem+json")
    problem = json.loads(body)
    assert problem["type"] == "about:blank"
    assert problem["title"] == "Request timeout"
    assert problem["status"] == 408
    assert problem["instance"] == "/api/v1/projects"
    with server.client(headers=member.headers) as http:
        assert http.get("/api/v1/projects").json() == []
        # The same server goes on taking bodies that arrive in time.
        created = http.post("/api/v1/projects", json={"name": "on time", "problem": "p"})
        assert created.status_code == 201, created.text
        assert [p["name"] for p in http.get("/api/v1/projects").json()] == ["on time"]


def _signed_in(http: httpx.Client, member: Actor) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    form = {
        "email": member.email,
        "password": PASSWORD,
        "csrf_token": token_in(http.get("/login").text),
    }
    assert http.post("/login", data=form).status_code == 303
    return token_in(http.get("/").text)


def test_a_page_form_trickled_past_the_deadline_is_a_readable_408_and_nothing_is_written(
    server: Server, member: Actor
) -> None:
    with server.client() as browser:
        csrf = _signed_in(browser, member)
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        headers = {
            "Cookie": cookie,
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(ANNOUNCED),
        }
        start = f"csrf_token={csrf}&name=slow&problem=".encode()
        status, content_type, body = _answer_to_trickled_body(
            server, "/projects", headers, start, b"x"
        )

        assert status == 408
        assert content_type.startswith("text/html")
        assert "did not arrive in full within" in body.decode()
        assert "so nothing was saved" in body.decode()
        with server.client(headers={"Authorization": f"Bearer {member.token}"}) as http:
            assert http.get("/api/v1/projects").json() == []
        # The same session's next form, sent at once, is taken.
        form = {"csrf_token": csrf, "name": "on time", "problem": "p"}
        assert browser.post("/projects", data=form).status_code == 303


def test_an_import_may_take_longer_than_the_deadline_as_its_route_takes_more(
    server: Server, admin: Actor
) -> None:
    """An import may be 64 MiB, 64 times the general body limit: it is held to 64 deadlines,
    not one, so an admin's upload at a modest rate is not cut."""
    with server.client(headers=admin.headers) as http:
        backup = http.get("/api/v1/export").content
    headers = {**admin.headers, "Content-Type": "application/json"}
    headers["Content-Length"] = str(len(backup))
    pieces = [backup[start : start + 64] for start in range(0, len(backup), 64)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=GIVE_UP_S) as connection:
        connection.sendall(_head("/api/v1/import", headers))
        for piece in pieces:  # over twice the general deadline in all
            time.sleep(max(TRICKLE_S, 2 * BODY_TIMEOUT_S / len(pieces)))
            connection.sendall(piece)
        response = read_response(connection)
    assert response is not None
    assert response[0] == 200, response
