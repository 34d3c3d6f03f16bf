"""Turn submitted forms into the same Pydantic schemas the API uses, with per-field errors."""

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from app.errors import InvalidInput, error_message
from app.models.enums import DecisionStatus
from app.schemas.project import ProjectCreate
from app.services.decisions import ItemWithDecision

Model = TypeVar("Model", bound=BaseModel)
FieldErrors = dict[str, str]
# A message may name a value of the error's context (pydantic's ``ctx``): a limit the user
# needs in order to fix what they typed.
MESSAGES = {
    "missing": "This field is required.",
    "string_too_short": "This field is required.",
    "string_too_long": "This is too long: at most {max_length:,} characters.",
    # The forms' only pattern is NO_NUL (app/schemas/common.py); a browser sends NUL as %00.
    "string_pattern_mismatch": "This contains a character that is not allowed (NUL).",
    "enum": "Choose one of the options.",
    "literal_error": "Choose one of the options.",
    "int_parsing": "This must be a whole number.",
    "too_long": "There are too many entries: at most {max_length:,}.",
}


# A form field takes 100,000 characters (app/schemas/common.py), and a form sends a
# character as up to 12 bytes: 4 of UTF-8 (one character to the fields' limits past U+FFFF),
# each as %XX. Most scripts but Latin take 6 or 9. Under the API's DESIGNGATE_MAX_BODY_BYTES
# (1 MiB by default) a project's design in Chinese was refused (413) while each of its fields
# was within what it says it takes.
BYTES_PER_CHARACTER = 12
# The fields' names, the form's token and its separators, with room to spare.
FORM_OVERHEAD_BYTES = 64 * 1024
# The pages' largest form: a project's design, every field of it.
LARGEST_FORM = ProjectCreate


def characters_at_limits(model: type[BaseModel]) -> int:
    """The characters a form of ``model`` holds with each of its text fields at its limit."""
    return sum(
        limit
        for field in model.model_fields.values()
        for constraint in field.metadata
        if isinstance(limit := getattr(constraint, "max_length", None), int)
    )


def web_form_limit(max_body_bytes: int) -> int:
    """The body limit of a signed-in session's pages (app/web/form_limit.py): the largest
    form with every field at its limit in any script, or DESIGNGATE_MAX_BODY_BYTES if larger."""
    largest = characters_at_limits(LARGEST_FORM) * BYTES_PER_CHARACTER + FORM_OVERHEAD_BYTES
    return max(max_body_bytes, largest)


async def read_form(request: Request) -> FormData:
    """The request's form, parsed once for the request (later ``request.form()`` calls get
    this one). Starlette refuses a field past 1 MiB (400) unless told otherwise: one field of
    100,000 characters can take 1.2 MB; the body limit bounds the whole form already."""
    limit = web_form_limit(request.app.state.settings.max_body_bytes)
    return await request.form(max_part_size=limit)


def values(form: FormData, *names: str) -> dict[str, str]:
    """The named text fields as submitted (absent ones as empty strings)."""
    return {name: _text(form.get(name)) for name in names}


def lines(text: str) -> list[str]:
    """A textarea with one entry per line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse(model: type[Model], data: dict[str, Any]) -> tuple[Model | None, FieldErrors]:
    """The schema instance, or None and a readable message per field."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, field_errors(exc)


def field_errors(exc: ValidationError) -> FieldErrors:
    errors: FieldErrors = {}
    for error in exc.errors():
        location = error.get("loc", ())
        field = str(location[0]) if location else "form"
        errors.setdefault(field, _message(error))
    return errors


def _message(error: Any) -> str:
    template = MESSAGES.get(error.get("type", ""))
    if template is None:
        return _sentence(error_message(error))
    return template.format(**(error.get("ctx") or {}))


def _sentence(text: str) -> str:
    """ "must not be blank" as the forms' other messages read: "Must not be blank."."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else f"{text}."


def service_field_error(exc: InvalidInput) -> FieldErrors:
    """A service's InvalidInput names its field when it knows it."""
    field = exc.extensions.get("field")
    return {str(field) if field else "form": exc.detail}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def decision_values(entry: ItemWithDecision, meeting_id: int | None = None) -> dict[str, Any]:
    """The form prefilled with the current decision, so superseding it starts from it."""
    decision = entry.decision
    return {
        "status": decision.status if decision else DecisionStatus.DECIDED.value,
        "summary": decision.summary if decision else "",
        "rationale": decision.rationale if decision else "",
        "alternatives": "\n".join(decision.alternatives) if decision else "",
        "version": decision.revision if decision else 0,
        "meeting_id": meeting_id or "",
    }
