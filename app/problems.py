"""RFC 9457 problem+json for every error the API returns."""

import asyncio
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import is_outage, outage_reason
from app.deps import token_refusal
from app.errors import DesignGateError, ServerBusy, error_message, field_error
from app.http_methods import method_not_allowed

PROBLEM_JSON = "application/problem+json"
# The bearer-token API's paths (app/api/router.py).
API_PATHS = "/api/"
log = logging.getLogger(__name__)

HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Request body too large",
    422: "Invalid input",
    431: "Request headers too large",
    500: "Internal server error",
    503: "Service unavailable",
}

# The shape of every problem+json body, inlined into the OpenAPI document (FastAPI
# would file a response model under application/json, which is not what is sent).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "On every 422: one entry per invalid value (app/errors.py field_error).",
            "items": {
                "type": "object",
                "required": ["field", "location", "message", "type"],
                "properties": {
                    "field": {
                        "type": "string",
                        "description": "The dotted path within the location; empty for the "
                        "whole body (JSON that does not parse)",
                    },
                    "location": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": '"body", "path" or "query", then the path to the value',
                    },
                    "message": {"type": "string"},
                    "type": {
                        "type": "string",
                        "description": "pydantic's error type (`missing`, `json_invalid`, ...); "
                        "`value_error` for the app's own checks",
                    },
                },
            },
        },
    },
    "additionalProperties": True,
}
PROBLEM_DESCRIPTIONS = {
    400: "The body could not be read as JSON text",
    401: "No API token, or an unknown or revoked one",
    403: "The caller's role may not do this",
    404: "The resource does not exist",
    408: "The request body did not arrive in full in time (DESIGNGATE_REQUEST_BODY_TIMEOUT_S)",
    409: "A conflict: a stale version, a closed gate, a spent budget",
    413: "The request body is larger than DESIGNGATE_MAX_BODY_BYTES",
    422: "The request is not valid; `errors` names the fields",
    429: "The caller already holds DESIGNGATE_MAX_STREAMS_PER_USER live event streams",
    503: "The database or the model is not available, or the server is too busy",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries saying these statuses answer with problem+json."""
    return {
        status: {
            "description": PROBLEM_DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


# Every JSON API route may answer with these.
API_PROBLEMS = problem_responses(400, 401, 403, 404, 408, 409, 413, 422, 503)


def problem_body(
    *, status: int, title: str, detail: str, problem_type: str = "about:blank", **members: Any
) -> dict[str, Any]:
    """An RFC 9457 document; ``members`` adds ``instance`` and extensions."""
    return {"type": problem_type, "title": title, "status": status, "detail": detail, **members}


def problem(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    problem_type: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body = problem_body(
        status=status,
        title=title,
        detail=detail,
        problem_type=problem_type,
        instance=request.url.path,
        **extensions,
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _designgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DesignGateError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    return problem(
        request,
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        problem_type=exc.problem_type,
        headers=headers,
        **exc.extensions,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    refused = await _unauthenticated(request)
    if refused is not None:
        return refused
    errors = [_field_error(error, exc.body) for error in exc.errors()]
    fields = ", ".join(sorted({e["field"] for e in errors if e["field"]}))
    detail = f"Check these fields: {fields}" if fields else "The request is not valid"
    return problem(
        request,
        status=422,
        title="Invalid input",
        detail=errors[0]["message"] if len(errors) == 1 and not fields else detail,
        errors=errors,
    )


async def _unauthenticated(request: Request) -> Response | None:
    """The API's 401 for a malformed request from a caller without a live token: who asks is
    settled before what they sent is judged, whatever the route, so its ids' and bodies'
    shapes are told to callers it knows alone (every route under /api/ needs a token)."""
    if not request.url.path.startswith(API_PATHS):
        return None
    try:
        refusal = await token_refusal(request)
    except OperationalError as exc:
        return await _database_down(request, exc)
    except ServerBusy as exc:
        return await _designgate_error(request, exc)
    return None if refusal is None else await _designgate_error(request, refusal)


def _field_error(error: Any, body: Any) -> dict[str, Any]:
    if error.get("type") == "json_invalid":
        return _malformed_json(error, body)
    return field_error(error.get("loc", ()), error_message(error), error.get("type", ""))


def _malformed_json(error: Any, body: Any) -> dict[str, Any]:
    """FastAPI names the character where JSON parsing stopped as if it were a field ("9");
    the entry is about the whole body and says the line and column."""
    reason = (error.get("ctx") or {}).get("error") or "malformed"
    location = error.get("loc", ())
    position = location[1] if len(location) > 1 and isinstance(location[1], int) else None
    where = ""
    if isinstance(body, str) and position is not None:
        line = body.count("\n", 0, position) + 1
        column = position - body.rfind("\n", 0, position)
        where = f" (line {line}, column {column})"
    message = f"The body is not valid JSON: {reason}{where}"
    return field_error(("body",), message, "json_invalid")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTP_TITLES.get(exc.status_code, "")
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 413:
        detail = "The request body is larger than this server accepts"
    if exc.status_code == 405:
        detail, headers = method_not_allowed(request.scope)
    if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        # The router's own 404 (no route matched) says only "Not Found", which reads like a
        # missing record; a record that is not there has its own detail.
        detail = f"Nothing is served at {request.url.path}"
        if request.url.path.startswith("/api/"):
            detail += "; the API is described at /docs"
    return problem(
        request,
        status=exc.status_code,
        title=HTTP_TITLES.get(exc.status_code, "Error"),
        detail=detail,
        headers=headers,
    )


# Seconds a client is asked to wait before trying again while the database is unreachable.
DATABASE_RETRY_AFTER = "2"


def log_database_outage(request: Request, exc: Exception) -> None:
    """Log why the database failed this request, so that an operator can tell a refused
    connection from a full disk or a lock; raise ``exc`` again if it is no outage.

    SQLite reports a statement it cannot run ("no such table") as an ``OperationalError``
    too: that is a bug, answered 500 with its traceback logged like any other, not a 503 that
    clients would wait out and try again for ever.
    """
    assert isinstance(exc, OperationalError)
    if not is_outage(exc):
        raise exc
    where = f"{request.method} {request.url.path}"
    log.warning("database unavailable (%s): %s", where, outage_reason(exc))


async def _database_down(request: Request, exc: Exception) -> Response:
    log_database_outage(request, exc)
    return problem(
        request,
        status=503,
        title="Database unavailable",
        detail="The database cannot answer right now; try again shortly",
        headers={"Retry-After": DATABASE_RETRY_AFTER},
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this, then re-raises so the traceback is
    # logged; the client gets a problem without the exception's text.
    return problem(
        request,
        status=500,
        title=HTTP_TITLES[500],
        detail="The server failed to handle this request; the error has been logged",
    )


class ProblemForOversizedBody:
    """Starlette's body limiter answers 413 in plain text; API clients get problem+json."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_problem_instead(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(message.get("headers", []))
                if not headers.get(b"content-type", b"").startswith(PROBLEM_JSON.encode()):
                    replaced = True
                    await _send_oversized_problem(scope, send)
                    return
            if replaced:
                return
            await send(message)

        await self.app(scope, receive, send_problem_instead)


async def _send_oversized_problem(scope: Scope, send: Send) -> None:
    body = json.dumps(
        problem_body(
            status=413,
            title=HTTP_TITLES[413],
            detail="The request body is larger than this server accepts",
            instance=scope.get("path", ""),
        )
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTimedOut(StarletteHTTPException):
    """The request body did not arrive in full within ``allowed_s`` of the app asking for it.
    An HTTPException, so FastAPI passes it on from its body reading to the error handlers
    (problem+json here, a page in app/web/errors.py) and the route never runs."""

    def __init__(self, allowed_s: float) -> None:
        detail = f"The request body did not arrive in full within {allowed_s:g} s; send it again"
        super().__init__(status_code=408, detail=detail)
        self.allowed_s = allowed_s


class RequestBodyDeadline:
    """A request's whole body must arrive within ``timeout_s`` of the app first asking for it.

    The protocol's idle deadline (app/http_protocol.py) cuts a body that pauses; a client that
    sends a byte every few seconds never pauses that long and held its connection, its task
    and the part received for as long as it liked. A route that takes more than
    ``max_body_bytes`` (a signed-in page's form, an admin's import) gets ``timeout_s`` for each
    ``max_body_bytes`` it takes, so a large upload at a modest rate is not cut. Past the
    deadline the app's read fails with BodyTimedOut, the request is answered 408 and the
    connection closed: the rest of the body is never read."""

    def __init__(self, app: ASGIApp, *, timeout_s: float, max_body_bytes: int) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _BodyWithDeadline(receive, allowed_s=lambda: self._allowed_s(scope))

        async def send_closing_after_timeout(message: Message) -> None:
            if message["type"] == "http.response.start" and body.timed_out:
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, body.receive, send_closing_after_timeout)

    def _allowed_s(self, scope: Scope) -> float:
        # The limit in force once the route is known: the body limiters set it in the scope.
        limit: int = scope.get(MAX_BODY_SIZE_SCOPE_KEY, self.max_body_bytes)
        return self.timeout_s * max(1.0, limit / self.max_body_bytes)


class _BodyWithDeadline:
    """One request's ``receive``, with a deadline from its first call until the body is in."""

    def __init__(self, receive: Receive, *, allowed_s: Callable[[], float]) -> None:
        self._receive = receive
        self._allowed_s = allowed_s
        self._deadline: float | None = None
        self.allowed_s = 0.0
        self._complete = False
        self.timed_out = False

    async def receive(self) -> Message:
        if self.timed_out:
            return {"type": "http.disconnect"}  # the rest of the body is not coming
        if self._complete:
            # Waiting for the client to leave (live streams do, for hours) has no deadline.
            return await self._receive()
        if self._deadline is None:
            self.allowed_s = self._allowed_s()
            self._deadline = asyncio.get_running_loop().time() + self.allowed_s
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self.timed_out = True
            raise BodyTimedOut(self.allowed_s) from None
        self._complete = message["type"] != "http.request" or not message.get("more_body")
        return message


def install(app: FastAPI, *, max_body_bytes: int, body_timeout_s: float) -> None:
    app.add_exception_handler(DesignGateError, _designgate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(Exception, _unexpected_error)
    # Added last so it wraps the limiter and can rewrite the limiter's own reply.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body_bytes)
    # Outside the limiters, so that it reads the limit they set for the route.
    app.add_middleware(RequestBodyDeadline, timeout_s=body_timeout_s, max_body_bytes=max_body_bytes)
    app.add_middleware(ProblemForOversizedBody)
