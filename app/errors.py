"""Errors that carry their HTTP status; one handler turns them into problem+json."""

from typing import Any


class DesignGateError(Exception):
    """A failure a user can act on. Services raise these; they know nothing of HTTP."""

    status_code = 400
    title = "Bad request"
    problem_type = "about:blank"

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
    status_code = 422
    title = "Invalid input"


class ModelNotConfigured(DesignGateError):
    status_code = 503
    title = "No model configured"
    problem_type = "urn:designgate:problem:model-not-configured"


class DatabaseUnavailable(DesignGateError):
    status_code = 503
    title = "Database unavailable"


class BudgetSpent(DesignGateError):
    """The project's token budget is used up; raising the budget is the only way on."""

    status_code = 409
    title = "Token budget spent"
    problem_type = "urn:designgate:problem:token-budget-spent"
