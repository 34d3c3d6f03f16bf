"""HTTP semantics beyond the bodies: what a 405 allows, HEAD, and a 204 without content."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.asserts import assert_problem
from tests.conftest import Actor


def test_revoking_a_token_is_a_204_without_content_or_content_type(
    client: TestClient, member: Actor
) -> None:
    [token] = client.get("/api/v1/tokens", headers=member.headers).json()
    response = client.delete(f"/api/v1/tokens/{token['id']}", headers=member.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers


def _allowed(response: Any) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


@pytest.mark.parametrize("method", ["delete", "put", "post"])
def test_a_405_allows_every_method_the_path_serves(
    client: TestClient, member: Actor, project: dict[str, Any], method: str
) -> None:
    """Starlette named the first route's methods only: `Allow: GET` where PATCH works too."""
    response = client.request(method, f"/api/v1/projects/{project['id']}", headers=member.headers)

    problem = assert_problem(response, 405)
    assert _allowed(response) == {"GET", "HEAD", "PATCH"}
    assert problem["detail"] == "This address serves GET, HEAD, PATCH only"


def test_a_405_on_a_path_without_get_allows_no_head(client: TestClient, member: Actor) -> None:
    response = client.head("/api/v1/import", headers=member.headers)

    assert response.status_code == 405
    assert _allowed(response) == {"POST"}


def test_a_405_on_a_page_names_every_method_in_allow(client: TestClient) -> None:
    response = client.delete("/login")

    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert _allowed(response) == {"GET", "HEAD", "POST"}


@pytest.mark.parametrize(
    "path", ["/api/v1/projects/{id}", "/api/v1/projects/{id}/gate", "/api/v1/projects"]
)
def test_head_answers_as_get_without_the_body(
    client: TestClient, member: Actor, project: dict[str, Any], path: str
) -> None:
    url = path.format(id=project["id"])
    got = client.get(url, headers=member.headers)

    response = client.head(url, headers=member.headers)

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == got.headers["content-type"]
    assert response.headers["content-length"] == got.headers["content-length"]


@pytest.mark.parametrize("path", ["/healthz", "/login", "/static/app.js"])
def test_head_answers_pages_and_files_without_the_body(client: TestClient, path: str) -> None:
    response = client.head(path)

    assert response.status_code == 200
    assert response.content == b""


def test_head_on_a_pages_of_a_signed_out_visitor_redirects_as_get_does(
    client: TestClient, member: Actor
) -> None:
    got = client.get("/", follow_redirects=False)

    response = client.head("/", follow_redirects=False)

    assert (response.status_code, response.headers.get("location")) == (
        got.status_code,
        got.headers.get("location"),
    )


@pytest.mark.timeout(30)
def test_head_on_a_live_stream_answers_its_headers_and_ends(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    thread = client.post(
        f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"}, headers=member.headers
    )
    assert thread.status_code == 201, thread.text

    response = client.head(f"/api/v1/threads/{thread.json()['id']}/events", headers=member.headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b""


def test_the_openapi_document_lists_no_head_operations(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path, operations in paths.items() if "head" in operations]
