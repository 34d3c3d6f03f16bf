"""Assertions shared by the API tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

PROBLEM_JSON = "application/problem+json"


class Response(Protocol):
    """What these assertions read from a test client's response."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"]
    return body


def gate_items(items: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """Checklist items or gate entries as comparable (item_id, category, title) triples."""
    return [(i.get("item_id") or i["id"], i["category"], i["title"]) for i in items]
