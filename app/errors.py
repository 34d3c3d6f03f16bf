"""Errors that carry their HTTP status; one handler turns them into problem+json."""

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

# Where in a request a value was: the first part of a 422 entry's location.
REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})
_PATH_PARTS = re.compile(r"[^.\[\]]+")


def field_error(
    location: Sequence[str | int], message: str, error_type: str = "value_error"
) -> dict[str, Any]:
    """One entry of a 422's `errors`, the one shape all of them have: `location` (the part of
    the request, then the path in it), `field` (that path dotted, "" for the whole body), what
    is wrong, and its kind (pydantic's error type; `value_error` for the app's own checks)."""
    parts = [str(part) for part in location]
    within = parts[1:] if parts and parts[0] in REQUEST_PARTS else parts
    return {"field": ".".join(within), "location": parts, "message": message, "type": error_type}


def error_message(error: Any) -> str:
    """Pydantic's message for one error, without the "Value error, " it puts before what
    one of the app's validators raised (app/schemas): those words are the message."""
    raised = (error.get("ctx") or {}).get("error") if error.get("type") == "value_error" else None
    return str(raised) if raised is not None else str(error.get("msg", ""))


def validation_errors(
    exc: ValidationError, within: Sequence[str | int] = ("body",)
) -> list[dict[str, Any]]:
    """Pydantic's errors as 422 entries; ``within`` is where the validated value sits."""
    return [
        field_error((*within, *error["loc"]), error_message(error), error["type"])
        for error in exc.errors(include_url=False)
    ]


class DesignGateError(Exception):
    """A failure a user can act on. Services raise these; they know nothing of HTTP."""

    status_code = 400
    title = "Bad request"
    problem_type = "about:blank"
    retry_after_s: int | None = None

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(DesignGateError):
    status_code = 404
    title = "Not found"


class Unauthorized(DesignGateError):
    status_code = 401
    title = "Unauthorized"


class Forbidden(DesignGateError):
    status_code = 403
    title = "Forbidden"


class Conflict(DesignGateError):
    status_code = 409
    title = "Conflict"
    problem_type = "urn:designgate:problem:conflict"


class GateClosed(DesignGateError):
    status_code = 409
    title = "The gate is closed"
    problem_type = "urn:designgate:problem:gate-closed"


class InvalidInput(DesignGateError):
    """A value the app refuses (422). ``field`` names it within the request body (dotted, or as
    a backup path like ``projects[0].name``); ``errors`` are its entries, by default one for
    ``field`` saying ``detail``."""

    status_code = 422
    title = "Invalid input"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        **extensions: Any,
    ) -> None:
        if field is not None:
            extensions["field"] = field
        if errors is None:
            errors = [field_error(("body", *_PATH_PARTS.findall(field or "")), detail)]
        super().__init__(detail, errors=errors, **extensions)


class ModelNotConfigured(DesignGateError):
    status_code = 503
    title = "No model configured"
    problem_type = "urn:designgate:problem:model-not-configured"


class DatabaseUnavailable(DesignGateError):
    status_code = 503
    title = "Database unavailable"


class ServerBusy(DesignGateError):
    """A request waited its whole ``DESIGNGATE_REQUEST_QUEUE_TIMEOUT_S`` for the database."""

    status_code = 503
    title = "Server busy"
    problem_type = "urn:designgate:problem:server-busy"
    retry_after_s = 5  # the Retry-After header: when a client should send it again


class TooManyStreams(DesignGateError):
    """The user already holds ``DESIGNGATE_MAX_STREAMS_PER_USER`` live event streams."""

    status_code = 429
    title = "Too many open streams"
    problem_type = "urn:designgate:problem:too-many-streams"
    retry_after_s = 5


class BudgetSpent(DesignGateError):
    """The project's token budget is used up; raising the budget is the only way on."""

    status_code = 409
    title = "Token budget spent"
    problem_type = "urn:designgate:problem:token-budget-spent"
