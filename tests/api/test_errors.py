"""Errors are RFC 9457 problem+json: 404 for unknown ids, 413 for big bodies, 422 per field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import ONE_MIB
from tests import factories
from tests.api.asserts import assert_problem
from tests.conftest import Actor

UNKNOWN = 987654


def test_healthz_answers_200_without_auth(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/projects/{unknown}", None),
        ("patch", "/api/v1/projects/{unknown}", {"version": 1, "name": "x"}),
        ("get", "/api/v1/projects/{unknown}/checklist", None),
        (
            "post",
            "/api/v1/projects/{unknown}/checklist",
            {"category": "load", "title": "t", "question": "q"},
        ),
        ("get", "/api/v1/projects/{unknown}/gate", None),
        ("get", "/api/v1/projects/{unknown}/audit", None),
        ("post", "/api/v1/projects/{unknown}/generations", {}),
        ("get", "/api/v1/projects/{unknown}/generations", None),
        (
            "put",
            "/api/v1/checklist-items/{unknown}/decision",
            {"status": "decided", "summary": "s", "rationale": "r"},
        ),
        ("get", "/api/v1/checklist-items/{unknown}/decisions", None),
        ("get", "/api/v1/generations/{unknown}", None),
    ],
)
def test_unknown_ids_are_404(
    client: TestClient, member: Actor, method: str, path: str, body: dict[str, Any] | None
) -> None:
    url = path.format(unknown=UNKNOWN)
    problem = assert_problem(client.request(method, url, json=body, headers=member.headers), 404)
    assert str(UNKNOWN) in problem["detail"]
    assert problem["instance"] == url


def test_an_unknown_path_is_a_404_problem(client: TestClient, member: Actor) -> None:
    problem = assert_problem(client.get("/api/v1/no-such-thing", headers=member.headers), 404)
    # Not the router's bare "Not Found", which reads like a record that is missing.
    assert problem["detail"] == (
        "Nothing is served at /api/v1/no-such-thing; the API is described at /docs"
    )


def test_a_missing_static_file_is_a_404_that_says_nothing_is_there(client: TestClient) -> None:
    problem = assert_problem(client.get("/static/no-such-file.css"), 404)
    assert problem["detail"] == "Nothing is served at /static/no-such-file.css"


def test_a_missing_record_is_a_404_that_names_it(client: TestClient, member: Actor) -> None:
    problem = assert_problem(client.get("/api/v1/projects/999999", headers=member.headers), 404)
    assert problem["detail"] == "Project 999999 does not exist"


def test_a_method_the_route_does_not_have_is_a_405_problem(
    client: TestClient, member: Actor
) -> None:
    assert_problem(client.delete("/api/v1/projects", headers=member.headers), 405)


def _big_project_body() -> bytes:
    return json.dumps({"name": "Big", "problem": "x" * (ONE_MIB + 1)}).encode()


def test_a_body_over_one_mib_is_413_and_nothing_is_stored(
    client: TestClient, member: Actor
) -> None:
    headers = {**member.headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/projects", content=_big_project_body(), headers=headers)
    body = assert_problem(response, 413)
    assert body["instance"] == "/api/v1/projects"
    assert client.get("/api/v1/projects", headers=member.headers).json() == []


def test_a_chunked_body_over_one_mib_without_content_length_is_413(
    client: TestClient, member: Actor
) -> None:
    payload = _big_project_body()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    headers = {**member.headers, "Content-Type": "application/json"}
    request = client.build_request("POST", "/api/v1/projects", content=chunks(), headers=headers)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_problem(client.send(request), 413)
    assert client.get("/api/v1/projects", headers=member.headers).json() == []


def test_a_decision_body_over_one_mib_is_413(
    client: TestClient, member: Actor, project: dict[str, Any]
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    body = {"status": "decided", "summary": "s", "rationale": "r" * (ONE_MIB + 1)}
    response = client.put(
        f"/api/v1/checklist-items/{item['id']}/decision", json=body, headers=member.headers
    )
    assert_problem(response, 413)
    assert factories.checklist(client, member, project["id"])[0]["decision"] is None


def _error_fields(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem["errors"]}


def _put_decision(client: TestClient, actor: Actor, item_id: int, body: dict[str, Any]) -> Any:
    return client.put(
        f"/api/v1/checklist-items/{item_id}/decision", json=body, headers=actor.headers
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "decided", "rationale": "r"}, "summary"),
        ({"status": "decided", "summary": "s", "rationale": "   "}, "rationale"),
        ({"status": "decided", "summary": "", "rationale": "r"}, "summary"),
        ({"status": "maybe", "summary": "s", "rationale": "r"}, "status"),
        ({"summary": "s", "rationale": "r"}, "status"),
        ({"status": "decided", "summary": "s", "rationale": "r", "colour": "red"}, "colour"),
        ({"status": "decided", "summary": "s", "rationale": "r", "version": -1}, "version"),
        ({"status": "not_applicable", "summary": "Not relevant", "rationale": ""}, "rationale"),
        ({"status": "not_applicable", "summary": "Not relevant"}, "rationale"),
        (
            {"status": "decided", "summary": "s", "rationale": "r", "alternatives": [""]},
            "alternatives.0",
        ),
        (
            {"status": "decided", "summary": "s", "rationale": "r", "alternatives": ["A", " "]},
            "alternatives.1",
        ),
    ],
    ids=[
        "missing summary",
        "blank rationale",
        "empty summary",
        "bad status",
        "missing status",
        "unknown field",
        "negative version",
        "not_applicable with an empty rationale",
        "not_applicable without a rationale",
        # Both were 200, the alternative dropped unseen, though the schema says minLength 1.
        "empty alternative",
        "blank alternative",
    ],
)
def test_an_invalid_decision_is_422_naming_the_field(
    client: TestClient,
    member: Actor,
    project: dict[str, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    item = factories.checklist(client, member, project["id"])[0]
    problem = assert_problem(_put_decision(client, member, item["id"], body), 422)
    assert field in _error_fields(problem)
    assert field in problem["detail"]
    assert factories.checklist(client, member, project["id"])[0]["decision"] is None


def test_a_blank_field_is_said_in_the_apps_words_without_pydantics_prefix(
    client: TestClient, member: Actor
) -> None:
    body = {"name": "   ", "problem": "Orders arrive twice."}
    response = client.post("/api/v1/projects", json=body, headers=member.headers)
    errors = assert_problem(response, 422)["errors"]
    assert [(e["field"], e["message"]) for e in errors] == [("name", "must not be blank")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "weather", "title": "t", "question": "q"}, "category"),
        ({"category": "load", "title": " ", "question": "q"}, "title"),
        ({"category": "load", "title": "t"}, "question"),
        ({"category": "load", "title": "t", "question": "q", "owner": "me"}, "owner"),
    ],
)
def test_an_invalid_checklist_item_is_422_naming_the_field(
    client: TestClient, member: Actor, project: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = client.post(
        f"/api/v1/projects/{project['id']}/checklist", json=body, headers=member.headers
    )
    assert field in _error_fields(assert_problem(response, 422))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"problem": "p"}, "name"),
        ({"name": "n"}, "problem"),
        ({"name": "n", "problem": "p", "colour": "red"}, "colour"),
        ({"name": "x" * 201, "problem": "p"}, "name"),
    ],
)
def test_an_invalid_project_is_422_naming_the_field(
    client: TestClient, member: Actor, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/projects", json=body, headers=member.headers)
    assert field in _error_fields(assert_problem(response, 422))


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": "n"}, "version"), ({"version": 1, "problem": " "}, "problem")],
)
def test_an_invalid_project_edit_is_422_naming_the_field(
    client: TestClient, member: Actor, project: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = client.patch(f"/api/v1/projects/{project['id']}", json=body, headers=member.headers)
    assert field in _error_fields(assert_problem(response, 422))


def test_malformed_json_is_a_422_problem(client: TestClient, member: Actor) -> None:
    headers = {**member.headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/projects", content=b'{"name": ', headers=headers)
    assert_problem(response, 422)


def test_a_non_numeric_id_is_a_422_problem(client: TestClient, member: Actor) -> None:
    problem = assert_problem(client.get("/api/v1/projects/abc", headers=member.headers), 422)
    assert "project_id" in _error_fields(problem)


def test_an_unexpected_server_error_is_a_500_problem_without_the_exception_text(
    app: FastAPI,
) -> None:
    @app.get("/api/test-only/boom")
    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/test-only/boom")
        page = client.get("/test-only/boom")
    problem = assert_problem(response, 500)
    assert "secret internals" not in response.text
    assert problem["instance"] == "/api/test-only/boom"
    # A page says it readably, in HTML, and without the exception's text either.
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "The server failed to handle this request" in page.text
    assert "secret internals" not in page.text


ENTRY_KEYS = {"field", "location", "message", "type"}


def assert_field_errors(problem: dict[str, Any]) -> list[dict[str, Any]]:
    """Every 422's `errors` entries have one shape: where, the field's path, what, its kind."""
    errors: list[dict[str, Any]] = problem["errors"]
    assert errors, problem
    for entry in errors:
        assert set(entry) == ENTRY_KEYS, entry
        assert entry["location"][0] in {"body", "path", "query"}, entry
        assert all(isinstance(part, str) for part in entry["location"]), entry
        assert entry["field"] == ".".join(entry["location"][1:]), entry
        assert entry["message"], entry
        assert entry["type"], entry
    return errors


def _template_body(**changes: Any) -> dict[str, Any]:
    categories = ["data_ownership", "degradation", "load", "resilience", "mitigation", "recovery"]
    items = [{"category": c, "title": f"About {c}", "question": "What then?"} for c in categories]
    return {"key": "team-job", "name": "Team job", "items": items, **changes}


def _json(client: TestClient, actor: Actor, method: str, url: str, body: Any) -> Any:
    return client.request(method, url, json=body, headers=actor.headers)


def _raw(client: TestClient, actor: Actor, method: str, url: str, body: bytes) -> Any:
    headers = {**actor.headers, "Content-Type": "application/json"}
    return client.request(method, url, content=body, headers=headers)


NOT_A_TEMPLATE_ITEM = _template_body(items=[{"category": "load", "title": "t"}])


@pytest.mark.parametrize(
    ("send", "method", "path", "body", "field"),
    [
        (_json, "post", "/api/v1/projects", {"problem": "p"}, "name"),
        (_raw, "post", "/api/v1/projects", b'{"name": ', ""),
        (_json, "get", "/api/v1/projects/abc", None, "project_id"),
        (
            _json,
            "post",
            "/api/v1/projects",
            {"name": "n", "problem": "p", "template": "no"},
            "template",
        ),
        (_json, "post", "/api/v1/templates", {"key": "team-job"}, "name"),
        (_json, "post", "/api/v1/templates", NOT_A_TEMPLATE_ITEM, "items.0.question"),
        (
            _json,
            "post",
            "/api/v1/projects/{id}/threads",
            {"mode": "failure_walk"},
            "checklist_item_id",
        ),
        (
            _json,
            "post",
            "/api/v1/projects/{id}/threads",
            {"mode": "open", "checklist_item_id": 2147483647},
            "checklist_item_id",
        ),
        (
            _json,
            "post",
            "/api/v1/projects/{id}/threads",
            {"mode": "open", "models": ["x/y"]},
            "models",
        ),
        (_json, "post", "/api/v1/drafts", {"request": "r", "template": "no"}, "template"),
        (_raw, "post", "/api/v1/import", b"[1, 2", ""),
        (_json, "post", "/api/v1/import", {"format": "other"}, "format"),
        (
            _json,
            "post",
            "/api/v1/import",
            {"format": "designgate-backup", "version": 1, "projects": 3},
            "projects",
        ),
    ],
    ids=[
        "schema",
        "malformed json",
        "path",
        "unknown template",
        "template missing a field",
        "template item missing a field",
        "thread without its item",
        "thread with another project's item",
        "thread with an unknown model",
        "draft with an unknown template",
        "backup not json",
        "backup of another format",
        "backup field",
    ],
)
def test_every_422_names_its_fields_in_one_shape(
    client: TestClient,
    admin: Actor,
    project: dict[str, Any],
    send: Any,
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    """Some 422s had no `errors` (a service's refusals), some entries lacked `location` and
    `type` (a template's, a backup's), and malformed JSON named field "9" (a position)."""
    response = send(client, admin, method, path.format(id=project["id"]), body)

    errors = assert_field_errors(assert_problem(response, 422))
    assert field in {entry["field"] for entry in errors}


def test_malformed_json_is_named_at_its_line_and_column(client: TestClient, member: Actor) -> None:
    body = b'{\n  "name": "n",\n  "problem": }'
    response = _raw(client, member, "post", "/api/v1/projects", body)

    problem = assert_problem(response, 422)
    [entry] = assert_field_errors(problem)
    assert (entry["location"], entry["field"], entry["type"]) == (["body"], "", "json_invalid")
    assert entry["message"] == "The body is not valid JSON: Expecting value (line 3, column 14)"
    assert problem["detail"] == entry["message"]


def test_the_openapi_document_requires_the_shape_of_every_422_entry(client: TestClient) -> None:
    """Schemathesis checks each 422 it provokes against this schema."""
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/projects"]["post"]
    schema = operation["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert set(schema["properties"]["errors"]["items"]["required"]) == ENTRY_KEYS
