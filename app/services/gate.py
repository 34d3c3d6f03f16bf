"""The gate: the one place that decides whether code may be generated.

It is derived from the checklist on every call, never stored. Everything that
asks (API, pages, CLI, code generation) calls ``gate()``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.models import Project
from app.services.decisions import ItemWithDecision, checklist


@dataclass(frozen=True)
class GateItem:
    item_id: int
    category: str
    title: str


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


def evaluate(items: Sequence[ItemWithDecision]) -> GateState:
    """The rule itself, on already loaded items (pure, for the truth-table tests)."""
    missing = tuple(_gate_item(i) for i in items if i.decision is None)
    stale = tuple(_gate_item(i) for i in items if i.stale)
    is_open = bool(items) and not missing and not stale
    return GateState(open=is_open, missing=missing, stale=stale, total=len(items))


def gate(session: Session, project: Project) -> GateState:
    return evaluate(checklist(session, project))


def _gate_item(entry: ItemWithDecision) -> GateItem:
    return GateItem(entry.item.id, entry.item.category, entry.item.title)
