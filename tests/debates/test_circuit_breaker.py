"""The per-model circuit breaker: opens after repeated failures, fails fast, then closes."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.llm import LLMFailure
from app.services.model_calls import CircuitBreakers, ModelCalls
from tests import factories
from tests.conftest import Actor
from tests.debates.conftest import MODEL
from tests.debates.helpers import last_reply, say, start_thread
from tests.llm_server import Reply, ScriptedLLM

BREAKER = {"llm_max_retries": 0, "llm_breaker_threshold": 2, "llm_breaker_cooldown_s": 30.0}


class FakeClock:
    """Monotonic time the test moves by hand, so the cool-down needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("settings_overrides", [BREAKER], ids=["threshold-2"])
def test_the_breaker_opens_fails_fast_and_closes_after_the_cool_down(
    app: FastAPI, client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    calls: ModelCalls = app.state.model_calls
    clock = FakeClock()
    calls.breakers.clock = clock
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(Reply(status=500), Reply(status=500))
    say(client, member, blind["id"], "Propose designs.")
    say(client, member, blind["id"], "Try again.")
    assert calls.breakers.state(MODEL) == "open"
    assert len(llm.requests) == 2

    llm.script("must not be asked for while the circuit is open")
    say(client, member, blind["id"], "And again.")
    refused = last_reply(client, member, blind["id"])
    assert refused["status"] == "error"
    assert refused["error_kind"] == "unavailable"
    assert refused["error"].startswith(f"circuit open for {MODEL} until ")
    assert len(llm.requests) == 2

    clock.now += 31
    assert calls.breakers.state(MODEL) == "half_open"
    say(client, member, blind["id"], "After the cool-down.")
    recovered = last_reply(client, member, blind["id"])
    assert recovered["status"] == "complete"
    assert len(llm.requests) == 3
    assert calls.breakers.state(MODEL) == "closed"


def _failure(kind: str = "unavailable") -> LLMFailure:
    return LLMFailure(kind, "scripted")


def test_a_failed_trial_call_reopens_the_breaker_at_once() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(3):
        breakers.admit("m")
        breakers.failed("m", _failure())
    assert breakers.state("m") == "open"
    clock.now += 11
    breakers.admit("m")  # the one trial call of the half-open state
    with pytest.raises(LLMFailure, match="trial call is in flight"):
        breakers.admit("m")
    breakers.failed("m", _failure("timeout"))
    assert breakers.state("m") == "open"


def test_request_errors_do_not_open_the_breaker() -> None:
    breakers = CircuitBreakers(threshold=1, cooldown_s=10, clock=FakeClock())
    for kind in ("unauthorised", "too_long", "bad_request"):
        breakers.admit("m")
        breakers.failed("m", _failure(kind))
    assert breakers.state("m") == "closed"


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breakers = CircuitBreakers(threshold=2, cooldown_s=10, clock=FakeClock())
    breakers.failed("m", _failure())
    breakers.succeeded("m")
    breakers.failed("m", _failure())
    assert breakers.state("m") == "closed"


def test_breakers_are_per_model() -> None:
    breakers = CircuitBreakers(threshold=1, cooldown_s=10, clock=FakeClock())
    breakers.failed("a", _failure())
    assert (breakers.state("a"), breakers.state("b")) == ("open", "closed")
    breakers.admit("b")


def test_backoff_is_jittered_under_an_exponential_ceiling(settings: Settings) -> None:
    calls = ModelCalls(
        settings.model_copy(update={"llm_backoff_base_s": 0.5, "llm_backoff_max_s": 4.0})
    )
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (8, 4.0)]:
        delays = [calls.backoff_s(attempt) for _ in range(50)]
        assert all(0 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert calls.backoff_s(0, retry_after_s=3.0) >= 3.0
    assert calls.backoff_s(0, retry_after_s=60.0) <= 4.0
