"""The gate: the one place that decides whether code may be generated.

It is derived from the checklist on every call, never stored. Everything that
asks (API, pages, CLI, code generation) calls ``gate()`` (or ``gates()`` for a list of
projects); each applies the one rule, ``evaluate()``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from sqlalchemy import ScalarSelect, Select, bindparam, select
from sqlalchemy.orm import Session

from app.errors import NotFound
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


class GateRow(NamedTuple):
    """One item as the gate query reads it: no ORM objects, only what the rule needs.

    A tuple, not a dataclass: the gate check reads one per item on every request.
    """

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
    rows = session.connection().execute(_GATE_STATEMENT, {"project_id": project.id})
    return evaluate([GateRow(*row, project.design_version) for row in rows])


def gate_of(session: Session, project_id: int) -> GateState:
    """The gate of a project known by its id alone: one statement reads the project's design
    version and its items together. NotFound when there is no such project."""
    rows = session.connection().execute(_PROJECT_GATE_STATEMENT, {"project_id": project_id}).all()
    if not rows:
        raise NotFound(f"Project {project_id} does not exist")
    # An item's columns are null together only in the outer join's row of an empty checklist.
    entries = [
        GateRow._make((item_id, category, title, version, design_version))
        for design_version, item_id, category, title, version in rows
        if item_id is not None
    ]
    return evaluate(entries)


def gates(session: Session, projects: Sequence[Project]) -> dict[int, GateState]:
    """The gate of each project, by id: one statement reads the items of them all, so a
    list of projects costs the same however long it is."""
    if not projects:
        return {}
    design_versions = {project.id: project.design_version for project in projects}
    entries: dict[int, list[GateRow]] = {project_id: [] for project_id in design_versions}
    rows = session.connection().execute(_GATES_STATEMENT, {"project_ids": list(design_versions)})
    for project_id, item_id, category, title, decision_version in rows:
        row = GateRow(item_id, category, title, decision_version, design_versions[project_id])
        entries[project_id].append(row)
    return {project_id: evaluate(items) for project_id, items in entries.items()}


def _newest_design_version() -> ScalarSelect[int | None]:
    """The design version of an item's newest decision revision: a correlated subquery over
    the (item_id, revision) unique index, so the gate is one statement whatever the number
    of items."""
    return (
        select(Decision.design_version)
        .where(Decision.item_id == ChecklistItem.id)
        .order_by(Decision.revision.desc())
        .limit(1)
        .correlate(ChecklistItem)
        .scalar_subquery()
    )


def _build_gate_statement() -> Select[int, str, str, int | None]:
    """Each item of a project with the design version of its newest decision revision."""
    return (
        select(
            ChecklistItem.id, ChecklistItem.category, ChecklistItem.title, _newest_design_version()
        )
        .where(ChecklistItem.project_id == bindparam("project_id"))
        .order_by(ChecklistItem.position, ChecklistItem.id)
    )


def _build_gates_statement() -> Select[int, int, str, str, int | None]:
    """The gate statement's items for many projects at once, each with its project's id."""
    return (
        select(
            ChecklistItem.project_id,
            ChecklistItem.id,
            ChecklistItem.category,
            ChecklistItem.title,
            _newest_design_version(),
        )
        .where(ChecklistItem.project_id.in_(bindparam("project_ids", expanding=True)))
        .order_by(ChecklistItem.project_id, ChecklistItem.position, ChecklistItem.id)
    )


def _build_project_gate_statement() -> Select[int, int | None, str | None, str | None, int | None]:
    """The project's design version with each of its items; one row with no item when the
    checklist is empty, none when the project does not exist."""
    return (
        select(
            Project.design_version,
            ChecklistItem.id,
            ChecklistItem.category,
            ChecklistItem.title,
            _newest_design_version(),
        )
        .select_from(Project)
        .outerjoin(ChecklistItem, ChecklistItem.project_id == Project.id)
        .where(Project.id == bindparam("project_id"))
        .order_by(ChecklistItem.position, ChecklistItem.id)
    )


# Built once: composing a statement costs more than running this one on a small checklist.
# Both are run on the session's connection: they read plain columns, so the ORM's row
# processing would be pure cost.
_GATE_STATEMENT = _build_gate_statement()
_PROJECT_GATE_STATEMENT = _build_project_gate_statement()
_GATES_STATEMENT = _build_gates_statement()


def _gate_item(entry: GateEntry) -> GateItem:
    return GateItem(entry.item_id, entry.category, entry.title)
