"""Model calls that survive a misbehaving provider.

Every call has an explicit timeout (DESIGNGATE_LLM_TIMEOUT_S), is retried a bounded
number of times with exponential backoff and full jitter when the failure is
transient (rate limits, 5xx, connection errors), moves on to the fallback models
when a model keeps failing, and goes through a per-model circuit breaker that fails
fast for a cool-down after repeated failures. A reply that has already streamed
text is never retried or replaced: the partial text is kept and the reason stored.
"""

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from app import llm, model_process
from app.config import Settings
from app.db import utcnow
from app.errors import ModelNotConfigured
from app.llm import JsonReply, LLMFailure, ModelEndpoint, Usage

# Worth trying the same model again: the provider is busy or briefly broken.
RETRYABLE = frozenset({"rate_limited", "unavailable"})
# Say the model (not the request) is unwell; only these count towards opening a breaker.
UNHEALTHY = frozenset({"rate_limited", "unavailable", "timeout"})
_jitter = random.SystemRandom()


@dataclass
class CallTrace:
    """What happened during one logical call: every attempt, the model that answered."""

    model: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    text_started: bool = False

    def note(self, model: str, failure: LLMFailure) -> None:
        self.attempts.append({"model": model, "kind": failure.kind, "reason": failure.reason})
        if failure.usage is not None:
            self.bill(failure.usage)

    def bill(self, usage: Usage) -> None:
        """Add what one attempt was billed: a failed one's tokens were spent too."""
        if not usage.known:
            return
        total = self.usage
        total.tokens_in = (total.tokens_in or 0) + (usage.tokens_in or 0)
        total.tokens_out = (total.tokens_out or 0) + (usage.tokens_out or 0)
        if usage.cost is not None:  # unknown costs stay unknown rather than free
            total.cost = (total.cost or 0.0) + usage.cost


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False


class CircuitBreakers:
    """One breaker per model: closed, open (refuses at once) or half-open (one trial call)."""

    def __init__(
        self, *, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}

    def state(self, model: str) -> str:
        with self._lock:
            breaker = self._breakers.get(model, _Breaker())
            if breaker.opened_at is None:
                return "closed"
            return "open" if self._remaining_s(breaker) > 0 else "half_open"

    def admit(self, model: str) -> None:
        """Let a call through, or raise the refusal a person can read."""
        with self._lock:
            breaker = self._breakers.setdefault(model, _Breaker())
            if breaker.opened_at is None:
                return
            remaining = self._remaining_s(breaker)
            if remaining > 0:
                until = (utcnow() + timedelta(seconds=remaining)).strftime("%Y-%m-%d %H:%M:%S UTC")
                raise LLMFailure(
                    "unavailable",
                    f"circuit open for {model} until {until} "
                    f"after {breaker.failures} consecutive failures",
                )
            if breaker.trial_in_flight:
                raise LLMFailure(
                    "unavailable", f"circuit half-open for {model}: a trial call is in flight"
                )
            breaker.trial_in_flight = True

    def succeeded(self, model: str) -> None:
        with self._lock:
            self._breakers[model] = _Breaker()

    def failed(self, model: str, failure: LLMFailure) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(model, _Breaker())
            was_trial = breaker.trial_in_flight
            breaker.trial_in_flight = False
            if failure.kind not in UNHEALTHY:
                return
            breaker.failures += 1
            if was_trial or breaker.failures >= self.threshold:
                breaker.opened_at = self.clock()

    def released(self, model: str) -> None:
        """A call ended without a verdict (cancelled): free the half-open trial slot."""
        with self._lock:
            breaker = self._breakers.get(model)
            if breaker is not None:
                breaker.trial_in_flight = False

    def _remaining_s(self, breaker: _Breaker) -> float:
        assert breaker.opened_at is not None
        return breaker.opened_at + self.cooldown_s - self.clock()


class ModelCalls:
    """The resilient way to call a model; one per app, so breakers are shared by its calls."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        process: model_process.ModelProcess | None = None,
    ) -> None:
        self.settings = settings
        self.process = process or model_process.shared()
        self.breakers = CircuitBreakers(
            threshold=settings.llm_breaker_threshold, cooldown_s=settings.llm_breaker_cooldown_s
        )
        self._sleep = sleep

    def candidates(self, model: str) -> list[str]:
        """The model asked for, then each fallback model not already in the list."""
        ordered = [model]
        ordered += [m for m in self.settings.fallback_models if m not in ordered]
        return ordered

    def endpoint(self, model: str) -> ModelEndpoint:
        endpoint = llm.endpoint_from_settings(self.settings, model)
        if endpoint is None:
            raise ModelNotConfigured("No model is configured")
        return endpoint

    async def stream(
        self, model: str, messages: list[dict[str, Any]], trace: CallTrace
    ) -> AsyncIterator[str]:
        """Yield the reply's text from the first model that answers; LLMFailure if none does."""
        failures: list[tuple[str, LLMFailure]] = []
        for candidate in self.candidates(model):
            try:
                async for piece in self._stream_with_retries(candidate, messages, trace):
                    yield piece
                return
            except LLMFailure as failure:
                failures.append((candidate, failure))
                if trace.text_started:
                    raise
        raise _combined(failures)

    async def complete_json(
        self, model: str, messages: list[dict[str, Any]], trace: CallTrace
    ) -> JsonReply:
        """A JSON answer from the first model that gives one; LLMFailure if none does."""
        failures: list[tuple[str, LLMFailure]] = []
        for candidate in self.candidates(model):
            try:
                return await self._complete_with_retries(candidate, messages, trace)
            except LLMFailure as failure:
                failures.append((candidate, failure))
        raise _combined(failures)

    async def _stream_with_retries(
        self, model: str, messages: list[dict[str, Any]], trace: CallTrace
    ) -> AsyncIterator[str]:
        endpoint = self.endpoint(model)
        for attempt in range(self.settings.llm_max_retries + 1):
            self._admit(model, trace)
            usage = Usage()
            try:
                async for piece in self.process.stream(endpoint, messages, usage=usage):
                    trace.text_started = True
                    yield piece
            except LLMFailure as failure:
                if not await self._retry_after_failure(model, failure, attempt, trace):
                    raise
                continue
            except BaseException:
                self.breakers.released(model)
                raise
            self.breakers.succeeded(model)
            trace.bill(usage)
            return

    async def _complete_with_retries(
        self, model: str, messages: list[dict[str, Any]], trace: CallTrace
    ) -> JsonReply:
        endpoint = self.endpoint(model)
        attempt = 0
        while True:
            self._admit(model, trace)
            try:
                reply = await self.process.complete_json(endpoint, messages)
            except LLMFailure as failure:
                if not await self._retry_after_failure(model, failure, attempt, trace):
                    raise
                attempt += 1
                continue
            except BaseException:
                self.breakers.released(model)
                raise
            self.breakers.succeeded(model)
            trace.bill(reply.usage)
            return reply

    def _admit(self, model: str, trace: CallTrace) -> None:
        trace.model = model
        try:
            self.breakers.admit(model)
        except LLMFailure as refusal:
            trace.note(model, refusal)
            raise

    async def _retry_after_failure(
        self, model: str, failure: LLMFailure, attempt: int, trace: CallTrace
    ) -> bool:
        """Record the failure; wait and say True when the same model is worth another try."""
        self.breakers.failed(model, failure)
        trace.note(model, failure)
        if trace.text_started or failure.kind not in RETRYABLE:
            return False
        if attempt >= self.settings.llm_max_retries:
            return False
        await self._sleep(self.backoff_s(attempt, failure.retry_after_s))
        return True

    def backoff_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Full jitter under an exponential ceiling; a provider's Retry-After is respected."""
        cap = self.settings.llm_backoff_max_s
        ceiling = min(cap, self.settings.llm_backoff_base_s * 2**attempt)
        delay = _jitter.uniform(0, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, cap))
        return delay


def _combined(failures: list[tuple[str, LLMFailure]]) -> LLMFailure:
    """One stored reason for a call that failed on every model it tried."""
    assert failures, "at least one model was tried"
    last = failures[-1][1]
    if len(failures) == 1:
        return last
    reasons = "; ".join(f"{model}: {failure.reason}" for model, failure in failures)
    return LLMFailure(last.kind, f"Every model failed. {reasons}")
