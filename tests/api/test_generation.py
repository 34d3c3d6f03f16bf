"""Code generation through real litellm to the scripted model server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.models.enums import Role
from tests import factories
from tests.api.asserts import assert_problem
from tests.conftest import Actor, make_actor
from tests.llm_server import Reply, ScriptedLLM

CODE = "def store_order(order):\n    return repository.insert_once(order)\n"


@pytest.fixture
def model_app(model_settings: Settings) -> FastAPI:
    """The app with the scripted server as its model."""
    return create_app(model_settings)


@pytest.fixture
def model_client(model_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(model_app) as client:
        yield client


@pytest.fixture
def writer(model_app: FastAPI) -> Actor:
    return make_actor(model_app.state.db, Role.MEMBER)


def _decided_project(client: TestClient, actor: Actor) -> dict[str, Any]:
    """A project whose gate is open, with a distinct summary, rationale and alternative each."""
    project = factories.create_project(client, actor, constraints="Python 3.12")
    for index, item in enumerate(factories.checklist(client, actor, project["id"])):
        factories.decide(
            client,
            actor,
            item,
            summary=f"summary-{index}",
            rationale=f"rationale-{index}",
            alternatives=[f"rejected-{index}-a", f"rejected-{index}-b"],
        )
    return project


def _start(client: TestClient, actor: Actor, project_id: int, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/projects/{project_id}/generations", json=body, headers=actor.headers
    )
    assert response.status_code == 202, response.text
    started: dict[str, Any] = response.json()
    return started


def _read(client: TestClient, actor: Actor, generation_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/generations/{generation_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_prompt_carries_the_design_and_every_current_decision(
    model_client: TestClient, writer: Actor, llm: ScriptedLLM
) -> None:
    project = _decided_project(model_client, writer)
    llm.script(Reply(text=CODE))
    _start(model_client, writer, project["id"], instructions="Use FastAPI.")
    assert len(llm.requests) == 1
    prompt = llm.prompts_text()[0]
    for text in (project["problem"], factories.ARCHITECTURE, factories.DATA_MODEL, "Use FastAPI."):
        assert text in prompt
    items = factories.checklist(model_client, writer, project["id"])
    for index, item in enumerate(items):
        assert item["title"] in prompt
        for text in (f"summary-{index}", f"rationale-{index}"):
            assert text in prompt
        for alternative in item["decision"]["alternatives"]:
            assert alternative in prompt
    assert llm.requests[0]["stream"] is True
    assert llm.requests[0]["model"] == "scripted-model"


def test_a_superseded_revision_is_not_in_the_prompt(
    model_client: TestClient, writer: Actor, llm: ScriptedLLM
) -> None:
    project = _decided_project(model_client, writer)
    item = factories.checklist(model_client, writer, project["id"])[0]
    factories.decide(model_client, writer, item, summary="the-newer-summary")
    llm.script(Reply(text=CODE))
    _start(model_client, writer, project["id"])
    prompt = llm.prompts_text()[0]
    assert "the-newer-summary" in prompt
    assert "summary-0" not in prompt


def test_a_generation_completes_with_its_content_and_the_revisions_it_was_based_on(
    model_client: TestClient, writer: Actor, llm: ScriptedLLM
) -> None:
    project = _decided_project(model_client, writer)
    first = factories.checklist(model_client, writer, project["id"])[0]
    factories.decide(model_client, writer, first, summary="second thoughts")
    llm.script(Reply(text=CODE, chunk_size=5))
    started = _start(model_client, writer, project["id"])
    assert started["status"] in {"pending", "streaming", "complete"}
    generation = _read(model_client, writer, started["id"])
    assert (generation["status"], generation["content"]) == ("complete", CODE)
    assert (generation["error"], generation["model"]) == (None, "openai/scripted-model")
    items = factories.checklist(model_client, writer, project["id"])
    assert generation["based_on"] == [
        {
            "decision_id": i["decision"]["id"],
            "item_id": i["id"],
            "revision": i["decision"]["revision"],
        }
        for i in items
    ]
    assert generation["based_on"][0]["revision"] == 2
    listed = model_client.get(
        f"/api/v1/projects/{project['id']}/generations", headers=writer.headers
    ).json()
    assert [g["id"] for g in listed] == [started["id"]]


def test_starting_a_generation_is_audited(
    model_client: TestClient, writer: Actor, llm: ScriptedLLM
) -> None:
    project = _decided_project(model_client, writer)
    llm.script(Reply(text=CODE))
    started = _start(model_client, writer, project["id"])
    events = model_client.get(
        f"/api/v1/projects/{project['id']}/audit", headers=writer.headers
    ).json()
    event = next(e for e in events if e["action"] == "generation.started")
    assert (event["actor_id"], event["entity_id"]) == (writer.user_id, started["id"])
    assert event["after"]["model"] == "openai/scripted-model"
    assert event["after"]["based_on"] == _read(model_client, writer, started["id"])["based_on"]


def test_a_closed_gate_is_refused_before_the_model_is_called(
    model_client: TestClient, writer: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, writer)
    response = model_client.post(
        f"/api/v1/projects/{project['id']}/generations", json={}, headers=writer.headers
    )
    assert len(assert_problem(response, 409)["missing"]) == 6
    assert llm.requests == []


def test_a_generation_can_be_started_without_a_body(
    model_client: TestClient, writer: Actor, llm: ScriptedLLM
) -> None:
    """Every field of the body is optional; without one the call was a 422, Field required."""
    project = _decided_project(model_client, writer)
    llm.script(Reply(text=CODE))

    response = model_client.post(
        f"/api/v1/projects/{project['id']}/generations", headers=writer.headers
    )

    assert response.status_code == 202, response.text
    assert _read(model_client, writer, response.json()["id"])["instructions"] == ""


def test_without_a_model_generation_is_503_saying_how_to_configure_one(
    client: TestClient, member: Actor
) -> None:
    project = _decided_project(client, member)
    response = client.post(
        f"/api/v1/projects/{project['id']}/generations", json={}, headers=member.headers
    )
    problem = assert_problem(response, 503)
    assert "DESIGNGATE_MODEL" in problem["detail"]
    assert problem["type"] == "urn:designgate:problem:model-not-configured"
    listed = client.get(f"/api/v1/projects/{project['id']}/generations", headers=member.headers)
    assert listed.json() == []
    # Everything else still works without a model.
    item = factories.checklist(client, member, project["id"])[0]
    assert factories.decide(client, member, item)["revision"] == 2
    assert factories.gate(client, member, project["id"])["open"] is True


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


FAILURES = {
    "server down": (None, "could not be reached", ""),
    "timeout before answering": (Reply(text=CODE, wait_before_s=1.5), "timeout", ""),
    "timeout between pieces": (
        Reply(text="0123456789abcdef", chunk_size=8, delay_s=1.5),
        "timeout",
        "01234567",
    ),
    "server error 500": (Reply(status=500, error_message="boom"), "server failed", ""),
    "rate limited 429": (Reply(status=429, error_message="slow down"), "rate limiting", ""),
    "stream cut mid-way": (
        Reply(text="abcdefgh" * 10, chunk_size=8, cut_after_chunks=3),
        "broke off before the reply was finished",
        "abcdefgh" * 3,
    ),
}


@pytest.mark.parametrize(("reply", "reason", "partial"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failing_model_leaves_the_generation_in_error_and_the_app_working(
    model_settings: Settings,
    llm: ScriptedLLM,
    reply: Reply | None,
    reason: str,
    partial: str,
) -> None:
    # The app's own retries are off here, so any extra request would be litellm's or the SDK's.
    overrides: dict[str, Any] = {"llm_timeout_s": 0.5, "llm_max_retries": 0}
    if reply is None:
        overrides["llm_api_base"] = f"http://127.0.0.1:{_closed_port()}/v1"
    settings = model_settings.model_copy(update=overrides)
    app = create_app(settings)
    with TestClient(app) as client:
        actor = make_actor(app.state.db, Role.MEMBER)
        project = _decided_project(client, actor)
        if reply is not None:
            llm.script(reply)
        generation = _read(client, actor, _start(client, actor, project["id"])["id"])
        assert generation["status"] == "error"
        assert generation["content"] == partial
        assert generation["error"]
        assert reason.lower() in generation["error"].lower()
        # One request per generation: neither litellm nor the openai SDK retried.
        assert len(llm.requests) == (0 if reply is None else 1)
        item = factories.checklist(client, actor, project["id"])[0]
        assert factories.decide(client, actor, item)["revision"] == 2
        assert client.get("/healthz").status_code == 200
