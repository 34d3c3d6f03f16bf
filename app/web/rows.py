"""Rows of the review page rendered from plain values and kept by those values.

Between two renderings of a review page almost every row is the same: a posted reply
changes one thread's counts, a decision one item's row. A row macro imported without
context sees only its arguments (and the environment's filters and globals), so when
those are plain immutable values its output is a function of them and can be kept.
"""

from collections.abc import Hashable
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from jinja2.runtime import Macro
from markupsafe import Markup

from app.services.decisions import ItemWithDecision

# Rows of about 1 KB each: a few megabytes at most, across every project and viewer.
ROWS_KEPT = 4096


class DecisionLine(NamedTuple):
    """What an item's row says of its current decision."""

    summary: str
    revision: int
    decided_by: str | None  # None once that user is deleted
    decided_at: datetime


class ItemRow(NamedTuple):
    """An item's row on the review page (and its state region), as plain values."""

    item_id: int
    title: str
    state: str
    decision: DecisionLine | None


def item_row_of(entry: ItemWithDecision) -> ItemRow:
    decision = entry.decision
    line = None
    if decision is not None:
        who = decision.decided_by.name if decision.decided_by is not None else None
        line = DecisionLine(decision.summary, decision.revision, who, decision.decided_at)
    return ItemRow(entry.item.id, entry.item.title, entry.state, line)


def kept(macro: Macro, *args: Hashable) -> Markup:
    """``macro(*args)``, rendered once for as long as it is kept.

    Only for a macro imported without context, called with plain immutable values
    (named tuples of strings, numbers and dates): a loaded entity could change under the
    same identity, and the kept output would then be stale.
    """
    return _kept(macro, args)


@lru_cache(maxsize=ROWS_KEPT)
def _kept(macro: Macro, args: tuple[Hashable, ...]) -> Markup:
    # A template edited while the server runs is loaded anew, with new macros: the
    # rows of the old ones are never asked for again and leave the cache in turn.
    _refuse_unless_plain(args)
    return Markup(macro(*args))  # noqa: S704 (the macro escaped what it rendered)


PLAIN = (str, int, float, datetime, type(None))


def _refuse_unless_plain(value: object) -> None:
    """Checked once per kept row (when it is first rendered), so a loaded entity passed by
    mistake fails at once instead of serving a stale row later."""
    if isinstance(value, tuple):
        for part in value:
            _refuse_unless_plain(part)
    elif not isinstance(value, PLAIN):
        raise TypeError(f"kept() takes plain values only, not {type(value).__name__}")
