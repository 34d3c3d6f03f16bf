"""Code generation against a misbehaving model server: down, slow, 429, 500, cut mid-stream.

Generation goes through the same resilient path as debate replies (retries with backoff,
fallback models, the circuit breaker); every failure keeps its partial text and a reason.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.services.model_calls import ModelCalls
from tests import factories
from tests.conftest import Actor, make_settings
from tests.llm_server import Reply, ScriptedLLM

MODEL = "openai/scripted-model"
BACKUP = "openai/backup-model"
CODE = "def store_order(order):\n    ...\n" * 4


def _closed_port_base() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(
    database_url: str, llm_server: ScriptedLLM, settings_overrides: dict[str, Any]
) -> Settings:
    values: dict[str, Any] = {
        "model": MODEL,
        "llm_api_base": llm_server.api_base,
        "llm_api_key": "test-key",
        "llm_timeout_s": 2.0,
        "llm_warmup": False,
        "llm_backoff_base_s": 0.0,
        "llm_backoff_max_s": 0.0,
        **settings_overrides,
    }
    return make_settings(database_url, **values)


def _generate(client: TestClient, member: Actor, *script: Reply | str, llm: ScriptedLLM) -> Any:
    """Open the gate, script the model, generate; the test client runs it to the end."""
    project = factories.create_project(client, member)
    factories.decide_all(client, member, project["id"])
    llm.script(*script)
    started = client.post(
        f"/api/v1/projects/{project['id']}/generations", json={}, headers=member.headers
    )
    assert started.status_code == 202, started.text
    generation = client.get(f"/api/v1/generations/{started.json()['id']}", headers=member.headers)
    return generation.json()


@pytest.mark.parametrize(
    "settings_overrides", [{"llm_api_base": _closed_port_base()}], ids=["server-down"]
)
def test_a_model_server_that_is_down_leaves_a_stored_reason(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    generation = _generate(client, member, llm=llm)
    assert generation["status"] == "error"
    assert "could not be reached" in generation["error"]
    assert generation["content"] == ""
    assert generation["completed_at"] is not None


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 0.5}], ids=["short-timeout"])
def test_a_model_too_slow_to_start_times_out_with_a_reason(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    generation = _generate(client, member, Reply(text=CODE, wait_before_s=1.5), llm=llm)
    assert generation["status"] == "error"
    assert "timeout" in generation["error"]
    assert len(llm.requests) == 1  # a timeout is not retried


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 0.5}], ids=["short-timeout"])
# Silent, or sending SSE keep-alive comments (bytes without text) while it stalls.
@pytest.mark.parametrize("keep_alive_s", [0.0, 0.1], ids=["silent", "keep-alive"])
def test_a_model_that_stalls_mid_reply_keeps_the_partial_code(
    client: TestClient, member: Actor, llm: ScriptedLLM, keep_alive_s: float
) -> None:
    # The first chunk arrives; the next one would come after the timeout.
    stalling = Reply(text=CODE, chunk_size=8, delay_s=1.5, keep_alive_s=keep_alive_s)
    generation = _generate(client, member, stalling, llm=llm)
    assert generation["status"] == "error"
    assert "timeout" in generation["error"]
    assert generation["content"] == CODE[:8]
    if keep_alive_s:  # the stream was closed, not left open: the next comment fails
        assert stalling.abandoned.wait(5)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_transient_error_is_retried_and_the_code_completes(
    client: TestClient, member: Actor, llm: ScriptedLLM, status: int
) -> None:
    generation = _generate(client, member, Reply(status=status), CODE, llm=llm)
    assert generation["status"] == "complete"
    assert generation["content"] == CODE
    assert generation["error"] is None
    assert len(llm.requests) == 2


@pytest.mark.parametrize(
    ("status", "reason"), [(429, "rate limiting"), (500, "failed")], ids=["429", "500"]
)
def test_retries_are_bounded_and_the_last_reason_is_kept(
    client: TestClient, member: Actor, llm: ScriptedLLM, status: int, reason: str
) -> None:
    generation = _generate(client, member, *[Reply(status=status)] * 3, CODE, llm=llm)
    assert generation["status"] == "error"
    assert reason in generation["error"]
    assert len(llm.requests) == 3  # the first try and DESIGNGATE_LLM_MAX_RETRIES=2


def test_a_stream_cut_mid_reply_keeps_the_partial_code_and_is_not_retried(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    cut = Reply(text=CODE, chunk_size=10, cut_after_chunks=3)
    generation = _generate(client, member, cut, CODE, llm=llm)
    assert generation["status"] == "error"
    assert generation["content"] == CODE[:30]
    assert "broke off before the reply was finished" in generation["error"]
    assert len(llm.requests) == 1  # text had streamed: a retry would duplicate it


def test_a_providers_error_mid_stream_keeps_the_partial_code_and_is_not_retried(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    overloaded = b'{"error": {"message": "Overloaded", "code": 529}}'
    broken = Reply(text=CODE, chunk_size=10, event_after_chunks=3, event=overloaded)
    generation = _generate(client, member, broken, CODE, llm=llm)
    assert generation["status"] == "error"
    assert generation["content"] == CODE[:30]
    assert "broke off before the reply was finished" in generation["error"]
    assert len(llm.requests) == 1


@pytest.mark.parametrize("settings_overrides", [{"llm_max_reply_chars": 25}], ids=["25-chars"])
def test_code_past_the_limit_is_cut_off_keeping_what_was_written(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    generation = _generate(client, member, Reply(text=CODE * 20, chunk_size=10), CODE, llm=llm)
    assert (generation["status"], generation["content"]) == ("error", CODE[:25])
    assert "passed 25 characters" in generation["error"]
    assert len(llm.requests) == 1


@pytest.mark.parametrize("text", ["", "\n  \n"], ids=["no-text", "whitespace"])
def test_an_empty_generation_fails_with_a_reason(
    client: TestClient, member: Actor, llm: ScriptedLLM, text: str
) -> None:
    generation = _generate(client, member, Reply(text=text), CODE, llm=llm)
    assert (generation["status"], generation["content"]) == ("error", text)
    assert "empty" in generation["error"]
    assert len(llm.requests) == 1


@pytest.mark.parametrize(
    ("finish_reason", "reason"),
    [
        ("length", "stopped the reply at its length limit"),
        ("content_filter", "content filter stopped the reply"),
    ],
)
def test_code_the_provider_stopped_keeps_its_text_and_says_why(
    client: TestClient, member: Actor, llm: ScriptedLLM, finish_reason: str, reason: str
) -> None:
    stopped = Reply(text=CODE, finish_reason=finish_reason)
    generation = _generate(client, member, stopped, CODE, llm=llm)
    assert (generation["status"], generation["content"]) == ("error", CODE)
    assert reason in generation["error"]
    assert len(llm.requests) == 1


@pytest.mark.parametrize(
    "settings_overrides", [{"fallback_models": [BACKUP], "llm_max_retries": 0}], ids=["fallback"]
)
def test_a_fallback_model_writes_the_code_when_the_model_fails(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script_for(MODEL, Reply(status=500))
    llm.script_for(BACKUP, CODE)
    generation = _generate(client, member, llm=llm)
    assert generation["status"] == "complete"
    assert generation["model"] == BACKUP
    assert generation["content"] == CODE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BREAKER = {"llm_max_retries": 0, "llm_breaker_threshold": 2, "llm_breaker_cooldown_s": 30.0}


@pytest.mark.parametrize("settings_overrides", [BREAKER], ids=["threshold-2"])
def test_the_breaker_stops_generations_hammering_a_failing_model_and_recovers(
    app: FastAPI, client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    calls: ModelCalls = app.state.model_calls
    clock = FakeClock()
    calls.breakers.clock = clock
    for _ in range(2):
        assert _generate(client, member, Reply(status=500), llm=llm)["status"] == "error"
    assert calls.breakers.state(MODEL) == "open"

    refused = _generate(client, member, "must not be asked for", llm=llm)
    assert refused["status"] == "error"
    assert refused["error"].startswith(f"circuit open for {MODEL} until ")
    assert len(llm.requests) == 2

    clock.now += 31
    llm.reset()
    recovered = _generate(client, member, CODE, llm=llm)
    assert recovered["status"] == "complete"
    assert calls.breakers.state(MODEL) == "closed"
    assert len(llm.requests) == 1
