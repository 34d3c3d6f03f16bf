"""Schemathesis against the app's own OpenAPI document: no 500s, nothing off-schema.

Every operation is fuzzed with schema-valid (positive) and schema-invalid (negative)
data, both at random ids and at the ids of a real project, item and thread, with every
built-in check (status codes, content types, headers and bodies must match the document).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckFunction, GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from app.models.enums import Role
from tests import factories
from tests.conftest import Actor, make_actor, make_settings

EXAMPLES_PER_OPERATION = 25
SOAK_EXAMPLES_PER_OPERATION = 150
# An event stream stays open while its thread exists, so the real thread's id is not
# aimed at; a random id that hits it is read for STREAM_READ_S and checked on what came.
STREAMS = frozenset({"/api/v1/threads/{thread_id}/events"})
STREAM_READ_S = 1.0
CALL_TIMEOUT_S = 30.0
# Schema-valid is not always acceptable: an item of another project, a model the server
# does not have, are 422 by design. Every other built-in check runs.
EXCLUDED_CHECKS: list[CheckFunction] = [positive_data_acceptance]
# 503 is the documented answer while the model (or the database) is unavailable, and no
# model is configured here; 413 is a rejection too (a body over DESIGNGATE_MAX_BODY_BYTES).
#
# The Authorization header is left out of generation: every case is sent with the admin's
# token, so a negative case tests the input it made invalid, not a missing token. Generated,
# the header was dropped in about half of the negative cases (660 of 1,300 in a run on
# 2026-12-07), whose answer was then the 401. The ignored_auth check still sends each
# operation once without the token and expects it refused.
CONFIG = """
[generation]
with-security-parameters = false
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "409", "413", "415", "422", "503"]
"""


def _operations() -> list[tuple[str, str]]:
    document = create_app(make_settings("sqlite:///:memory:")).openapi()
    return [
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    ]


def _real_ids(client: TestClient, admin: Actor) -> dict[str, int]:
    """A project with one decided item and a thread, so fuzzing reaches past the 404s."""
    project = factories.create_project(client, admin)
    item = factories.checklist(client, admin, project["id"])[0]
    factories.decide(client, admin, item)
    thread = client.post(
        f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"}, headers=admin.headers
    )
    assert thread.status_code == 201, thread.text
    return {"project_id": project["id"], "item_id": item["id"], "thread_id": thread.json()["id"]}


def _strategy(operation: Any, mode: GenerationMode, real_ids: dict[str, int]) -> Any:
    strategy = operation.as_strategy(mode)
    names = {p.name for p in operation.path_parameters}
    known = {name: value for name, value in real_ids.items() if name in names}
    if known and known.keys() == names and operation.path not in STREAMS:
        strategy = st.one_of(strategy, operation.as_strategy(mode, path_parameters=known))
    return strategy


def _has_inputs(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def fuzz(
    app: FastAPI, client: TestClient, method: str, path: str, mode: GenerationMode, examples: int
) -> None:
    """Run ``examples`` generated requests against one operation with every check."""
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=schemathesis.Config.from_str(CONFIG)
    )
    operation = schema[path][method]
    if mode == GenerationMode.NEGATIVE and not _has_inputs(operation):
        pytest.skip("no inputs to make invalid")
    admin = make_actor(app.state.db, Role.ADMIN)
    real_ids = _real_ids(client, admin)
    timeout = STREAM_READ_S if path in STREAMS else CALL_TIMEOUT_S

    @given(case=_strategy(operation, mode, real_ids))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case[Any]) -> None:
        case.call_and_validate(
            headers=admin.headers, excluded_checks=EXCLUDED_CHECKS, timeout=timeout
        )

    try:
        check()
    except Unsatisfiable:
        # Every case of a negative run is sent; none could be made here. Its inputs take
        # any value (a template's key is any string in the path).
        if mode != GenerationMode.NEGATIVE:
            raise
        pytest.skip("no input can be made invalid")


OPERATIONS = pytest.mark.parametrize(("method", "path"), _operations())
MODES = pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@OPERATIONS
@MODES
def test_every_operation_answers_within_its_schema(
    app: FastAPI, client: TestClient, method: str, path: str, mode: GenerationMode
) -> None:
    fuzz(app, client, method, path, mode, EXAMPLES_PER_OPERATION)


@pytest.mark.soak
@OPERATIONS
@MODES
def test_every_operation_answers_within_its_schema_at_length(
    app: FastAPI, client: TestClient, method: str, path: str, mode: GenerationMode
) -> None:
    fuzz(app, client, method, path, mode, SOAK_EXAMPLES_PER_OPERATION)
