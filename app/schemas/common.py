import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)


def _not_a_boolean(value: object) -> object:
    """JSON true is not the number 1, though pydantic's lax mode would take it as one.
    (Text such as "3" still parses: HTML forms send nothing else.)"""
    if isinstance(value, bool):
        raise ValueError("a number is required, not true or false")
    return value


def _not_a_number(value: object) -> object:
    """JSON 0 and 1 are not false and true, though lax mode would take them as such."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("true or false is required, not a number")
    return value


def _stripped_not_blank(value: str) -> str:
    """Surrounding whitespace is dropped; something must be left."""
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


NotABoolean = BeforeValidator(_not_a_boolean)
Flag = Annotated[bool, BeforeValidator(_not_a_number)]
# Ids are INTEGER columns: PostgreSQL refuses anything larger (and SQLite anything past
# 64 bits), so a bigger number is invalid input rather than a database error.
MAX_ID = 2**31 - 1
MAX_COUNT = 2**31 - 1
# Bounds come before NotABoolean, and fields take these types rather than ``Field(ge=...)``
# on an int checked by it: pydantic applies annotations in order, and bounds put on the
# validator's function schema reached the OpenAPI document as "ge" and "le", which are not
# JSON Schema.
Id = Annotated[int, Field(ge=1, le=MAX_ID), NotABoolean]
# Tokens, budgets, positions in a list and the revision a decision supersedes (0 for the
# first): never negative.
Count = Annotated[int, Field(ge=0, le=MAX_COUNT), NotABoolean]
# Versions and revisions, which the app counts from 1.
Positive = Annotated[int, Field(ge=1, le=MAX_COUNT), NotABoolean]

# PostgreSQL text cannot hold the NUL character (an insert with one was a 500), so no
# text field takes it; the pattern also says so in the OpenAPI document.
NO_NUL = r"^[^\x00]*$"

# Text no database here can store: NUL (PostgreSQL's text cannot hold it) and lone surrogates
# (JSON can escape one; UTF-8, so neither database, cannot encode it). What people send is
# refused (NO_NUL; pydantic refuses lone surrogates); text the app did not write itself, a
# model's and a backup's, carries U+FFFD in their place, the character that stands in for
# one that cannot be shown, as a page would show NUL anyway.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable(text: str) -> str:
    return _UNSTORABLE.sub(REPLACEMENT, text)


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


# How deep lists and objects may nest in JSON read from outside (a backup, a model's answer).
# The app's own values nest a few levels, and a backup of an instance holding every kind of
# row nests nine (tests/after_gate/stored.py, measured 2026-12-06). Python's parser stops
# near a thousand with RecursionError (a backup of "[" repeated was a 500 on the API and a
# traceback on the command line), and every walk of a stored value (``storable_json``,
# validation, the JSON columns' encoder, the pages) recurses too, each with less room than
# the parser.
MAX_JSON_DEPTH = 64


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels in ``value`` (a scalar is
    level 0); walked without recursion, so any depth can be asked about."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            children = list(current.values())
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def storable_json(value: Any) -> Any:
    """``value`` with ``storable`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_json(item) for item in value]
    if isinstance(value, dict):
        return {storable_json(key): storable_json(item) for key, item in value.items()}
    return value


# Lengths are checked on the text as sent (what the OpenAPI document says), then it is
# stripped; stripping first let a 201-character name with a leading tab through.
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NO_NUL),
    AfterValidator(_stripped_not_blank),
]
MAX_TEXT = 100_000
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=NO_NUL)]
RequiredText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=NO_NUL),
    AfterValidator(_stripped_not_blank),
]


class Strict(BaseModel):
    """Request bodies refuse unknown fields so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)
