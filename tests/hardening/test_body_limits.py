"""Bodies over DESIGNGATE_MAX_BODY_BYTES (1 MiB by default) get 413 problem+json (a
readable message on pages), whether the client announces the size (Content-Length) or
streams it (chunked). A signed-in session's pages take forms up to the largest form with
every field at its limit in any script."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import ONE_MIB
from app.schemas.common import MAX_TEXT
from app.web.forms import web_form_limit
from tests import factories
from tests.conftest import Actor
from tests.hardening.server import Server, designgate_env, read_response
from tests.hardening.web_helpers import sign_in

OVER = ONE_MIB + 1


def _project_body(size: int) -> bytes:
    """A well-formed JSON project of exactly ``size`` bytes."""
    skeleton = json.dumps({"name": "big", "problem": ""}).encode()
    return skeleton.replace(b'""', b'"' + b"x" * (size - len(skeleton)) + b'"')


def _oversized_project() -> bytes:
    return _project_body(OVER)


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _assert_problem_413(status: int, content_type: str, body: bytes) -> None:
    assert status == 413
    assert content_type == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 413
    assert problem["title"] == "Request body too large"


def test_an_announced_oversized_body_is_refused(client: TestClient, member: Actor) -> None:
    body = _oversized_project()
    assert len(body) == OVER
    response = client.post(
        "/api/v1/projects",
        content=body,
        headers={**member.headers, "Content-Type": "application/json"},
    )
    _assert_problem_413(response.status_code, response.headers["content-type"], response.content)


def test_a_streamed_oversized_body_is_refused(client: TestClient, member: Actor) -> None:
    response = client.post(
        "/api/v1/projects",
        content=_chunks(_oversized_project()),
        headers={**member.headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    _assert_problem_413(response.status_code, response.headers["content-type"], response.content)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_oversized_body_on_a_route_that_reads_none_is_refused(
    client: TestClient, member: Actor, method: str
) -> None:
    response = client.request(
        method, "/api/v1/tokens/1", content=b"x" * OVER, headers=member.headers
    )
    _assert_problem_413(response.status_code, response.headers["content-type"], response.content)


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_an_oversized_form_on_a_page_is_a_readable_message(
    client: TestClient, member: Actor, htmx: bool
) -> None:
    """Pages got the API's problem+json: a browser showed raw JSON, and htmx swapped the
    JSON into the form."""
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    past_limit = "s" * (web_form_limit(ONE_MIB) + 1)  # a signed-in page's forms' limit
    form = {"status": "decided", "summary": past_limit, "rationale": "r", "csrf_token": token}
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post(f"/items/{item['id']}/decision", data=form, headers=headers)

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "larger than this server accepts, so nothing was saved" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers.get("hx-retarget") == ("#flash" if htmx else None)
    decisions = client.get(
        f"/api/v1/checklist-items/{item['id']}/decisions", headers=member.headers
    )
    assert decisions.json()["revisions"] == []


def test_a_body_at_the_limit_is_read(client: TestClient, member: Actor) -> None:
    """Exactly 1 MiB passes the limiter; the field limits answer it instead."""
    body = _project_body(ONE_MIB)
    assert len(body) == ONE_MIB
    response = client.post(
        "/api/v1/projects",
        content=body,
        headers={**member.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "problem"


def _raw_chunked_post(port: int, path: str, token: str, body: bytes) -> tuple[int, str, bytes]:
    """POST with Transfer-Encoding: chunked over a plain socket, as a streaming client would."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        connection.sendall(head.encode())
        try:
            for chunk in _chunks(body):
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        response = read_response(connection)
        assert response is not None, "the server closed the connection without an answer"
        return response


def test_a_real_server_refuses_a_chunked_oversized_body(
    database_url: str, member: Actor, tmp_path: Path
) -> None:
    with Server(designgate_env(database_url), tmp_path / "server.log") as server:
        status, content_type, body = _raw_chunked_post(
            server.port, "/api/v1/projects", member.token, _oversized_project()
        )
        with server.client(headers=member.headers) as http:
            assert http.get("/api/v1/projects").json() == []
    _assert_problem_413(status, content_type, body)


# The widest character a form field can hold: 4 bytes of UTF-8, each sent as %XX.
WIDEST = "\U0001f600"


def test_a_project_form_at_every_field_limit_in_any_script_is_taken(
    client: TestClient, member: Actor
) -> None:
    """Each field says it takes 100,000 characters; in most scripts but Latin a form spends 6
    to 12 bytes on one, and the 1 MiB body limit refused (413) what the fields allow."""
    token = sign_in(client, member.email)
    form = {
        "name": WIDEST * 200,
        **dict.fromkeys(("problem", "architecture", "data_model"), WIDEST * MAX_TEXT),
        "constraints": "\u4e2d" * MAX_TEXT,  # 9 bytes each
        "csrf_token": token,
    }
    response = client.post("/projects", data=form, follow_redirects=False)

    assert response.status_code == 303, response.text[:500]
    created = client.get("/api/v1/projects", headers=member.headers).json()
    assert [len(project["name"]) for project in created] == [200]
    project = client.get(f"/api/v1/projects/{created[0]['id']}", headers=member.headers).json()
    assert len(project["problem"]) == MAX_TEXT
    assert len(project["constraints"]) == MAX_TEXT


def test_a_form_past_the_largest_form_is_still_refused(client: TestClient, member: Actor) -> None:
    token = sign_in(client, member.email)
    form = {"name": "big", "problem": "p" * (web_form_limit(ONE_MIB) + 1), "csrf_token": token}
    response = client.post("/projects", data=form)

    assert response.status_code == 413
    assert "larger than this server accepts, so nothing was saved" in response.text
    assert client.get("/api/v1/projects", headers=member.headers).json() == []


def test_a_form_sent_without_signing_in_keeps_the_body_limit(client: TestClient) -> None:
    """Only a signed-in session's forms may be larger: anyone can send a sign-in form."""
    response = client.post("/login", data={"email": "x" * OVER, "password": "p"})

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")


def test_an_api_body_keeps_its_limit_for_a_signed_in_browser(
    client: TestClient, member: Actor
) -> None:
    sign_in(client, member.email)
    response = client.post(
        "/api/v1/projects",
        content=_oversized_project(),
        headers={**member.headers, "Content-Type": "application/json"},
    )
    _assert_problem_413(response.status_code, response.headers["content-type"], response.content)
