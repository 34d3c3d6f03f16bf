"""The only module that imports litellm.

litellm is imported lazily (it takes seconds and a few hundred MB) and always
with the local cost map, so importing it never reaches for the network.
"""

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from app.config import Settings


@dataclass(frozen=True)
class ModelEndpoint:
    """Where and how to call one model."""

    model: str
    api_base: str | None
    api_key: str | None
    timeout_s: float


class LLMFailure(Exception):
    """A model call that failed, with a reason a person can read."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def endpoint_from_settings(settings: Settings, model: str | None = None) -> ModelEndpoint | None:
    chosen = model or settings.model
    if not chosen:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return ModelEndpoint(chosen, settings.llm_api_base, key, settings.llm_timeout_s)


def _litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def warm_up() -> None:
    """Pay litellm's import cost in the background, not on a user's first call."""
    _litellm()


async def stream_chat(
    endpoint: ModelEndpoint, messages: list[dict[str, Any]]
) -> AsyncIterator[str]:
    """Yield the reply's text as it arrives; raise LLMFailure on any failure."""
    litellm = await asyncio.to_thread(_litellm)
    finished = False
    try:
        response = await litellm.acompletion(**_call_arguments(endpoint, messages))
        async for chunk in response:
            choice = chunk.choices[0] if chunk.choices else None
            if choice is None:
                continue
            if choice.delta and choice.delta.content:
                yield choice.delta.content
            finished = finished or bool(choice.finish_reason)
    except LLMFailure:
        raise
    except Exception as exc:  # every provider error must become a stored reason
        raise classify(litellm, exc) from exc
    if not finished:
        raise LLMFailure("unavailable", "The model's stream ended before the reply was finished.")


def _call_arguments(endpoint: ModelEndpoint, messages: list[dict[str, Any]]) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": endpoint.model,
        "messages": messages,
        "stream": True,
        "timeout": endpoint.timeout_s,
        # The openai SDK retries twice on its own; retries are decided by the caller.
        "max_retries": 0,
        "num_retries": 0,
    }
    if endpoint.api_base:
        arguments["api_base"] = endpoint.api_base
    if endpoint.api_key:
        arguments["api_key"] = endpoint.api_key
    return arguments


def _refused_or_unresolved(exc: BaseException) -> bool:
    """Whether the chain of causes shows the server was never reached at all."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError | socket.gaierror):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _error_class(litellm: ModuleType, class_name: str) -> object:
    """litellm exports most error classes at the top; the rest live in litellm.exceptions."""
    found = getattr(litellm, class_name, None)
    return found if found is not None else getattr(litellm.exceptions, class_name, None)


def classify(litellm: ModuleType, exc: Exception) -> LLMFailure:
    """Map a provider error onto a stored kind and a readable reason."""
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    checks: tuple[tuple[str, str, str], ...] = (
        ("Timeout", "timeout", "The model did not answer within the timeout."),
        ("RateLimitError", "rate_limited", "The model provider is rate limiting requests."),
        ("AuthenticationError", "unauthorised", "The model provider refused the API key."),
        ("PermissionDeniedError", "unauthorised", "The model provider refused the API key."),
        ("ContextWindowExceededError", "too_long", "The prompt is too long for the model."),
        # Before its base classes: a stream that breaks off is not a server that is down.
        (
            "MidStreamFallbackError",
            "unavailable",
            "The model's stream broke off before the reply was finished.",
        ),
        ("APIConnectionError", "unavailable", "The model server could not be reached."),
        ("ServiceUnavailableError", "unavailable", "The model server is unavailable."),
        ("InternalServerError", "unavailable", "The model server failed."),
        ("NotFoundError", "unavailable", "The model server does not know this model."),
        ("BadRequestError", "bad_request", "The model provider rejected the request."),
    )
    if _refused_or_unresolved(exc):
        # litellm reports a refused connection as InternalServerError ("the server failed").
        return LLMFailure("unavailable", f"The model server could not be reached. ({detail})")
    for class_name, kind, reason in checks:
        error_class = _error_class(litellm, class_name)
        if isinstance(error_class, type) and isinstance(exc, error_class):
            return LLMFailure(kind, f"{reason} ({detail})")
    if isinstance(exc, TimeoutError):
        return LLMFailure("timeout", "The model did not answer within the timeout.")
    return LLMFailure("error", f"The model call failed: {detail}")
