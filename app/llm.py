"""The only module that imports litellm.

litellm is imported lazily (it takes seconds and a few hundred MB) and always
with the local cost map, so importing it never reaches for the network.
"""

import asyncio
import functools
import json
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from app import heap
from app.config import DEFAULT_MAX_REPLY_CHARS, Settings
from app.schemas.common import MAX_JSON_DEPTH, nests_deeper_than, storable, storable_json


@dataclass(frozen=True)
class ModelEndpoint:
    """Where and how to call one model."""

    model: str
    api_base: str | None
    api_key: str | None
    timeout_s: float
    max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS


class LLMFailure(Exception):
    """A model call that failed, with a reason a person can read."""

    def __init__(
        self,
        kind: str,
        reason: str,
        *,
        retry_after_s: float | None = None,
        usage: "Usage | None" = None,
    ) -> None:
        reason = storable(reason)
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry_after_s = retry_after_s
        # What the provider billed for the failed call (a reply it cut off, one cut off
        # here): the tokens were spent all the same, and count against the budget.
        self.usage = usage


@dataclass
class Usage:
    """What one call consumed, filled in as the provider reports it (None when it does not)."""

    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None

    @property
    def known(self) -> bool:
        return self.tokens_in is not None or self.tokens_out is not None


@dataclass(frozen=True)
class JsonReply:
    """A non-streamed reply parsed as one JSON object."""

    data: dict[str, Any]
    text: str
    usage: Usage


def endpoint_from_settings(settings: Settings, model: str | None = None) -> ModelEndpoint | None:
    chosen = model or settings.model
    if not chosen:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return ModelEndpoint(
        chosen,
        settings.llm_api_base,
        key,
        settings.llm_timeout_s,
        settings.llm_max_reply_chars,
    )


@functools.cache
def _litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    # litellm leaves a large heap of long-lived objects; every full collection walked it and
    # stalled the event loop for hundreds of milliseconds (most of each p99 in bench/).
    # Frozen objects are never scanned again; they were going to live as long as the process.
    heap.keep_for_life()
    return litellm


def warm_up() -> None:
    """Pay litellm's import cost in the background, not on a user's first call."""
    _litellm()


async def stream_chat(
    endpoint: ModelEndpoint, messages: list[dict[str, Any]], *, usage: Usage | None = None
) -> AsyncIterator[str]:
    """Yield the reply's text as it arrives; raise LLMFailure on any failure.

    ``usage``, when given, is filled in from the stream's usage report once it arrives. A
    failure after the model began to answer carries the usage the call was billed.
    """
    litellm = await asyncio.to_thread(_litellm)
    billed = Usage()
    streamed: list[str] = []
    try:
        async for piece in _stream_pieces(litellm, endpoint, messages, billed):
            streamed.append(piece)
            yield piece
    except LLMFailure as failure:
        if streamed or billed.known:
            failure.usage = _billed(litellm, endpoint, messages, billed, "".join(streamed))
        raise
    finally:
        if usage is not None:
            vars(usage).update(vars(billed))


async def _stream_pieces(
    litellm: ModuleType, endpoint: ModelEndpoint, messages: list[dict[str, Any]], usage: Usage
) -> AsyncIterator[str]:
    finished = False
    finish_reason: str | None = None
    length = 0
    has_text = False
    try:
        response = await litellm.acompletion(**_call_arguments(endpoint, messages, stream=True))
        chunks = aiter(response)
        while (chunk := await _next_chunk(chunks, response, endpoint.timeout_s)) is not None:
            reported = getattr(chunk, "usage", None)
            _record_usage(litellm, endpoint.model, reported, usage)
            if finished and reported is not None:
                # The reply and its usage are in. Reading on, litellm would assemble the
                # whole reply a second time and price it for its own logging (about a third
                # of the CPU a call costs here), which nothing in this app reads.
                await response.aclose()
                break
            choice = chunk.choices[0] if chunk.choices else None
            if choice is None:
                continue
            if choice.delta and choice.delta.content:
                # A reply with NUL failed its every save on PostgreSQL and was left streaming.
                piece = storable(choice.delta.content)
                room = endpoint.max_reply_chars - length
                if len(piece) > room:
                    yield piece[:room]
                    await response.aclose()
                    raise _cut_off(endpoint.max_reply_chars)
                length += len(piece)
                has_text = has_text or not piece.isspace()
                yield piece
            finished = finished or bool(choice.finish_reason)
            finish_reason = choice.finish_reason or finish_reason
    except LLMFailure:
        raise
    except Exception as exc:  # every provider error must become a stored reason
        raise without_key(classify(litellm, exc), endpoint) from exc
    if not finished:
        raise LLMFailure("unavailable", "The model's stream ended before the reply was finished.")
    if not has_text:
        _check_not_a_stream(response)
    _check_outcome(finish_reason, has_text=has_text)


def _check_not_a_stream(response: Any) -> None:
    """litellm reads an answer that is no event stream (a proxy's or a sign-in page's HTML,
    sent with 200) as a stream with no text and ends it as if the model had: it read as the
    model's reply being empty, which sent people looking at the model, not at what answered
    in its place."""
    headers = getattr(response, "_hidden_params", {}).get("additional_headers") or {}
    content_type = str(headers.get("llm_provider-content-type", ""))
    if content_type and not content_type.startswith("text/event-stream"):
        raise LLMFailure(
            "empty",
            f"The model server answered with {content_type[:100]}, not a stream of the"
            " model's reply: is something else answering at DESIGNGATE_LLM_API_BASE (a proxy,"
            " a sign-in page)?",
        )


def _billed(
    litellm: ModuleType,
    endpoint: ModelEndpoint,
    messages: list[dict[str, Any]],
    reported: Usage,
    text: str,
) -> Usage:
    """The usage of a failed stream: as the provider reported it, or, for a stream that
    ended before its report (cut off here, broken off, timed out), litellm's count of the
    prompt and the text received, the estimate litellm makes of a whole reply whose
    provider reports none."""
    if reported.known:
        return reported
    try:
        count = functools.partial(litellm.token_counter, model=endpoint.model)
        tokens_in = count(messages=messages)
        tokens_out = count(text=text, count_response_tokens=True)
    except Exception:  # a count is an estimate; a failure to count must not hide the reason
        return reported
    return Usage(tokens_in, tokens_out, cost_of(litellm, endpoint.model, tokens_in, tokens_out))


# A stream that ends for these reasons ended because the provider stopped the model, not
# because the model had said all it meant to (litellm maps every provider's names onto these).
_STOPPED_BY_PROVIDER = {
    "length": "The model provider stopped the reply at its length limit (its max tokens).",
    "content_filter": "The model provider's content filter stopped the reply.",
}


def _check_outcome(finish_reason: str | None, *, has_text: bool) -> None:
    """A reply the provider stopped, or one without a word in it, is a failure with a
    reason, its text kept: stored as complete, it read as the model's whole answer, and an
    empty one counted as a blind round and released the design (rule 3)."""
    stopped = _STOPPED_BY_PROVIDER.get(finish_reason or "")
    if stopped is not None:
        raise LLMFailure("cut_off", stopped)
    if not has_text:
        raise LLMFailure("empty", "The model's reply was empty: it sent no text.")


async def _next_chunk(chunks: AsyncIterator[Any], response: Any, timeout_s: float) -> Any | None:
    """The stream's next chunk, None at its end.

    The connection's read timeout counts bytes, and a proxy or provider that sends SSE
    keep-alive comments while its model hangs sends bytes for ever: the reply stayed
    streaming, and its thread busy, with no end. The timeout also counts from the last
    chunk, comments not being chunks.
    """
    try:
        async with asyncio.timeout(timeout_s):  # a timer, where wait_for makes a task
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        await response.aclose()
        raise LLMFailure(
            "timeout",
            f"The model sent nothing within the timeout ({timeout_s:g} s, "
            "DESIGNGATE_LLM_TIMEOUT_S), though it kept the connection open.",
        ) from None


def _cut_off(max_reply_chars: int) -> LLMFailure:
    """A model that goes on and on (a loop, or a server that never ends its stream) is
    never silent long enough to time out: its reply would grow, and its thread stay busy,
    for ever. It is cut off at the limit, its text so far kept."""
    return LLMFailure(
        "too_long",
        f"The reply passed {max_reply_chars} characters and was cut off there "
        "(DESIGNGATE_LLM_MAX_REPLY_CHARS).",
    )


async def complete_json(endpoint: ModelEndpoint, messages: list[dict[str, Any]]) -> JsonReply:
    """One non-streamed call that must answer with a JSON object; LLMFailure otherwise."""
    litellm = await asyncio.to_thread(_litellm)
    arguments = _call_arguments(endpoint, messages, stream=False)
    # Providers without JSON mode lose the flag (drop_params) and are parsed leniently.
    arguments["response_format"] = {"type": "json_object"}
    try:
        # The connection's read timeout counts bytes, and some providers send newlines
        # (whitespace JSON allows) to keep a connection open while the model writes: one
        # whose model hung kept the call waiting for ever. The whole answer must arrive in time.
        async with asyncio.timeout(endpoint.timeout_s):
            response = await litellm.acompletion(**arguments)
    except TimeoutError:
        raise LLMFailure(
            "timeout",
            f"The model's answer was not complete within the timeout ({endpoint.timeout_s:g} s,"
            " DESIGNGATE_LLM_TIMEOUT_S).",
        ) from None
    except Exception as exc:
        raise without_key(classify(litellm, exc), endpoint) from exc
    usage = Usage()
    _record_usage(litellm, endpoint.model, getattr(response, "usage", None), usage)
    try:
        return _json_reply(response, endpoint, usage)
    except LLMFailure as failure:
        failure.usage = usage  # the answer came, and was billed, whatever was wrong with it
        raise


def _json_reply(response: Any, endpoint: ModelEndpoint, usage: Usage) -> JsonReply:
    """The answer as a JSON object; LLMFailure for one the provider stopped, one too long,
    or one that is not a JSON object."""
    text = storable(_reply_text(response))
    # An answer cut at max tokens was parsed as if whole (a verdict, proposals) when what
    # was cut still parsed, and otherwise failed as "not a JSON object".
    _check_outcome(_finish_reason(response), has_text=True)
    if len(text) > endpoint.max_reply_chars:
        # Stored whole, the judge's answer went into every read of its thread.
        raise LLMFailure(
            "too_long",
            f"The answer passed {endpoint.max_reply_chars} characters "
            "(DESIGNGATE_LLM_MAX_REPLY_CHARS) and was set aside.",
        )
    data = parse_json_object(text)
    if data is None:
        reason = f"The model did not answer with a JSON object: {text[:200]!r}"
        raise LLMFailure("bad_output", reason)
    return JsonReply(storable_json(data), text, usage)


def _first_choice(response: Any) -> Any:
    choices = getattr(response, "choices", None) or []
    return choices[0] if choices else None


def _reply_text(response: Any) -> str:
    message = getattr(_first_choice(response), "message", None)
    return str(getattr(message, "content", None) or "")


def _finish_reason(response: Any) -> str | None:
    reason = getattr(_first_choice(response), "finish_reason", None)
    return reason if isinstance(reason, str) else None


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a reply, tolerating code fences and prose around it; not one that
    nests deeper than any answer asked for (``MAX_JSON_DEPTH``), which the app could not
    store and read back."""
    stripped = _FENCE.sub("", text.strip())
    candidates = [stripped]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        try:
            parsed = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(parsed, dict) and not nests_deeper_than(parsed, MAX_JSON_DEPTH):
            return parsed
    return None


def _record_usage(litellm: ModuleType, model: str, reported: Any, usage: Usage) -> None:
    if reported is None:
        return
    tokens_in = getattr(reported, "prompt_tokens", None)
    tokens_out = getattr(reported, "completion_tokens", None)
    if isinstance(tokens_in, int):
        usage.tokens_in = tokens_in
    if isinstance(tokens_out, int):
        usage.tokens_out = tokens_out
    usage.cost = cost_of(litellm, model, usage.tokens_in, usage.tokens_out)


def cost_of(
    litellm: ModuleType, model: str, tokens_in: int | None, tokens_out: int | None
) -> float | None:
    """The call's price in USD from litellm's cost map; None for a model it does not know."""
    if tokens_in is None and tokens_out is None:
        return None
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=tokens_in or 0, completion_tokens=tokens_out or 0
        )
        return float(prompt_cost) + float(completion_cost)
    except Exception:  # an unmapped model is normal (local and self-hosted ones)
        return None


def _call_arguments(
    endpoint: ModelEndpoint, messages: list[dict[str, Any]], *, stream: bool
) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": endpoint.model,
        "messages": messages,
        "stream": stream,
        "timeout": endpoint.timeout_s,
        # The openai SDK retries twice on its own; retries are decided by the caller.
        "max_retries": 0,
        "num_retries": 0,
        # A provider that cannot report usage or answer in JSON mode loses the option
        # instead of refusing the call.
        "drop_params": True,
    }
    if stream:
        arguments["stream_options"] = {"include_usage": True}
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
    retry_after = _retry_after_s(exc)
    if type(exc).__name__ == "MidStreamFallbackError":
        reason = "The model's stream broke off before the reply was finished."
        return LLMFailure("unavailable", f"{reason} ({detail})")
    if "Connection error" in detail and not isinstance(exc, getattr(litellm, "Timeout", ())):
        return LLMFailure("unavailable", f"The model server could not be reached. ({detail})")
    checks: tuple[tuple[str, str, str], ...] = (
        ("Timeout", "timeout", "The model did not answer within the timeout."),
        ("RateLimitError", "rate_limited", "The model provider is rate limiting requests."),
        ("AuthenticationError", "unauthorised", "The model provider refused the API key."),
        ("PermissionDeniedError", "unauthorised", "The model provider refused the API key."),
        ("ContextWindowExceededError", "too_long", "The prompt is too long for the model."),
        ("APIConnectionError", "unavailable", "The model server could not be reached."),
        ("ServiceUnavailableError", "unavailable", "The model server is unavailable."),
        ("InternalServerError", "unavailable", "The model server failed."),
        # A configuration problem like a refused key: not retried, not held against the
        # model's health (its circuit), though a fallback model may still answer.
        ("NotFoundError", "unknown_model", "The model server does not know this model."),
        ("BadRequestError", "bad_request", "The model provider rejected the request."),
    )
    if _refused_or_unresolved(exc):
        # litellm reports a refused connection as InternalServerError ("the server failed").
        return LLMFailure("unavailable", f"The model server could not be reached. ({detail})")
    for class_name, kind, reason in checks:
        error_class = _error_class(litellm, class_name)
        if isinstance(error_class, type) and isinstance(exc, error_class):
            return LLMFailure(kind, f"{reason} ({detail})", retry_after_s=retry_after)
    if isinstance(exc, TimeoutError):
        return LLMFailure("timeout", "The model did not answer within the timeout.")
    return LLMFailure("error", f"The model call failed: {detail}")


# Provider keys are tens of characters long; a shorter key is a local server's placeholder
# ("none", "EMPTY", "ollama") or a test's, and also a part of ordinary words.
SHORT_KEY_CHARS = 16


def without_key(failure: LLMFailure, endpoint: ModelEndpoint) -> LLMFailure:
    """Some providers echo the key they were sent in their error message; stored reasons
    are shown to every user, so the key is cut out of them.

    A short key is cut out only where it stands alone, so that the reason stays readable
    ("Check" with the key "k" is left as it is); a long one wherever it appears."""
    key = endpoint.api_key
    if not key or key not in failure.reason:
        return failure
    pattern = re.escape(key)
    if len(key) < SHORT_KEY_CHARS:
        pattern = rf"(?<![\w-]){pattern}(?![\w-])"
    failure.reason = re.sub(pattern, "[redacted]", failure.reason)
    failure.args = (failure.reason,)
    return failure


def _retry_after_s(exc: Exception) -> float | None:
    """The provider's Retry-After in seconds, when it sent one as a number."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
