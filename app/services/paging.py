"""Lists read a page at a time, each page starting past the last id of the one before."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page of a list, and whether more rows follow it."""

    rows: list[Row]
    more: bool


def page_of(rows: Sequence[Row], *, limit: int) -> Page[Row]:
    """The page of rows read with one beyond ``limit``: that one only tells that more follow,
    which costs no count of the whole list."""
    return Page(rows=list(rows[:limit]), more=len(rows) > limit)
