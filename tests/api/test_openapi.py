"""The OpenAPI document speaks JSON Schema, so clients and fuzzers read its bounds."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

# Pydantic's names for bounds; JSON Schema's are minimum, maximum and the exclusive ones.
PYDANTIC_BOUNDS = {"ge", "le", "gt", "lt"}


def _pydantic_bounds(schema: Any, where: str) -> list[str]:
    """Where in ``schema`` a bound is written under pydantic's name (the keys of
    ``properties`` are field names, so only their values are searched)."""
    if isinstance(schema, list):
        return [
            hit for i, part in enumerate(schema) for hit in _pydantic_bounds(part, f"{where}[{i}]")
        ]
    if not isinstance(schema, dict):
        return []
    found = [f"{where}.{key}" for key in schema if key in PYDANTIC_BOUNDS]
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            for name, field in value.items():
                found += _pydantic_bounds(field, f"{where}.properties.{name}")
        else:
            found += _pydantic_bounds(value, f"{where}.{key}")
    return found


def test_no_schema_in_the_openapi_document_gives_bounds_under_pydantic_names(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()

    assert _pydantic_bounds(document, "") == []


def test_body_fields_give_their_bounds_as_minimum_and_maximum(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    budget = schemas["ProjectCreate"]["properties"]["token_budget"]["anyOf"][0]
    item_id = schemas["VoteWrite"]["properties"]["item_id"]
    assert (budget["minimum"], budget["maximum"]) == (0, 2**31 - 1)
    assert (item_id["minimum"], item_id["maximum"]) == (1, 2**31 - 1)
