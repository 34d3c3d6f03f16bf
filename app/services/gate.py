"""The gate: the one place that decides whether code may be generated.

It is derived from the checklist on every call, never stored. Everything that
asks (API, pages, CLI, code generation) calls ``gate()``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from app.models import ChecklistItem, Decision, Project


class GateEntry(Protocol):
    """What the rule needs to know of one checklist item."""

    @property
    def item_id(self) -> int: ...
    @property
    def category(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def undecided(self) -> bool: ...
    @property
    def stale(self) -> bool: ...


@dataclass(frozen=True)
class GateItem:
    item_id: int
    category: str
    title: str


@dataclass(frozen=True)
class GateRow:
    """One item as the gate query reads it: no ORM objects, only what the rule needs."""

    item_id: int
    category: str
    title: str
    decision_design_version: int | None
    project_design_version: int

    @property
    def undecided(self) -> bool:
        return self.decision_design_version is None

    @property
    def stale(self) -> bool:
        version = self.decision_design_version
        return version is not None and version < self.project_design_version


@dataclass(frozen=True)
class GateState:
    """Open only when every item has a current decision that is not stale."""

    open: bool
    missing: tuple[GateItem, ...]
    stale: tuple[GateItem, ...]
    total: int

    @property
    def decided(self) -> int:
        return self.total - len(self.missing) - len(self.stale)

    def reason(self) -> str:
        if self.open:
            return "Every checklist item has a current decision."
        if self.total == 0:
            return "The checklist is empty: there is nothing reviewed to generate from."
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} item(s) have no decision")
        if self.stale:
            parts.append(f"{len(self.stale)} decision(s) are stale since the design changed")
        return "; ".join(parts) + "."


def evaluate(entries: Sequence[GateEntry]) -> GateState:
    """The rule itself, on already loaded items (pure, for the truth-table tests)."""
    missing = tuple(_gate_item(e) for e in entries if e.undecided)
    stale = tuple(_gate_item(e) for e in entries if e.stale)
    is_open = bool(entries) and not missing and not stale
    return GateState(open=is_open, missing=missing, stale=stale, total=len(entries))


def gate(session: Session, project: Project) -> GateState:
    return evaluate(_gate_rows(session, project))


def _build_gate_statement() -> Select[int, str, str, int | None]:
    """Each item of a project with the design version of its newest decision revision.

    Built once: a correlated subquery over the (item_id, revision) unique index, so it is
    one statement whatever the number of items.
    """
    newest_design_version = (
        select(Decision.design_version)
        .where(Decision.item_id == ChecklistItem.id)
        .order_by(Decision.revision.desc())
        .limit(1)
        .correlate(ChecklistItem)
        .scalar_subquery()
    )
    return (
        select(ChecklistItem.id, ChecklistItem.category, ChecklistItem.title, newest_design_version)
        .where(ChecklistItem.project_id == bindparam("project_id"))
        .order_by(ChecklistItem.position, ChecklistItem.id)
    )


_GATE_STATEMENT = _build_gate_statement()


def _gate_rows(session: Session, project: Project) -> list[GateRow]:
    rows = session.execute(_GATE_STATEMENT, {"project_id": project.id})
    return [
        GateRow(item_id, category, title, version, project.design_version)
        for item_id, category, title, version in rows
    ]


def _gate_item(entry: GateEntry) -> GateItem:
    return GateItem(entry.item_id, entry.category, entry.title)
