"""A caller is authenticated before anything in its request is judged: without a live token,
a malformed id or body is 401 like any other request, so the API says nothing about its
routes' shapes to someone it does not know; with one, it is the usual 422."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.deps import TOKEN_REFUSAL
from tests.api.asserts import assert_problem
from tests.api.test_auth import api_routes
from tests.api.test_errors import assert_field_errors
from tests.conftest import Actor

NO_TOKEN: dict[str, str] = {}
UNKNOWN_TOKEN = {"Authorization": "Bearer dg_not-a-real-token"}
# Ids these routes cannot have; a template's key is text, so "abc" would be a valid one.
MALFORMED_IDS = ("abc", "0", "99999999999")
# A few id routes with every method each serves: (method, path, what a valid token gets).
ID_ROUTES = [
    ("get", "/api/v1/projects/{id}", "project_id"),
    ("patch", "/api/v1/projects/{id}", "project_id"),
    ("get", "/api/v1/projects/{id}/gate", "project_id"),
    ("get", "/api/v1/projects/{id}/checklist", "project_id"),
    ("post", "/api/v1/projects/{id}/checklist", "project_id"),
    ("put", "/api/v1/checklist-items/{id}/decision", "item_id"),
    ("get", "/api/v1/threads/{id}/events", "thread_id"),
    ("delete", "/api/v1/tokens/{id}", "token_id"),
]


def _with_ids(path: str, value: str) -> str:
    return re.sub(r"\{\w+\}", value, path)


def _assert_refused_as_unknown(response: object, headers: dict[str, str]) -> None:
    """The 401 the route's own authentication gives, challenge included."""
    body = assert_problem(response, 401)  # type: ignore[arg-type]
    assert response.headers["www-authenticate"] == "Bearer"  # type: ignore[attr-defined]
    assert (body["detail"] == TOKEN_REFUSAL) == bool(headers), body


@pytest.mark.parametrize("headers", [NO_TOKEN, UNKNOWN_TOKEN], ids=["no token", "unknown token"])
def test_every_api_route_with_a_malformed_id_is_401_without_a_live_token(
    app: FastAPI, client: TestClient, headers: dict[str, str]
) -> None:
    routes = [(method, path) for method, path in api_routes(app) if "{" in path]
    assert len(routes) >= 30
    answers = {
        (method.upper(), url): client.request(method, url, json={}, headers=headers)
        for method, path in routes
        for url in (_with_ids(path, value) for value in MALFORMED_IDS)
    }
    assert {
        request for request, response in answers.items() if response.status_code != 401
    } == set()
    for response in answers.values():
        _assert_refused_as_unknown(response, headers)


@pytest.mark.parametrize("headers", [NO_TOKEN, UNKNOWN_TOKEN], ids=["no token", "unknown token"])
def test_a_body_that_is_not_json_is_401_without_a_live_token(
    client: TestClient, headers: dict[str, str]
) -> None:
    sent = {**headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/projects", content=b'{"name": ', headers=sent)
    _assert_refused_as_unknown(response, headers)


@pytest.mark.parametrize(("method", "path", "field"), ID_ROUTES)
def test_a_malformed_id_with_a_live_token_is_422_naming_it(
    client: TestClient, member: Actor, method: str, path: str, field: str
) -> None:
    for value in MALFORMED_IDS:
        response = client.request(method, _with_ids(path, value), json={}, headers=member.headers)
        errors = assert_field_errors(assert_problem(response, 422))
        assert {"field": field, "location": ["path", field]}.items() <= errors[0].items()
