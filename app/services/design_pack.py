"""The design pack: the project, its constraints and every decision, per category.

One builder feeds the code-generation prompt, the design-pack export, the spec-kit pair,
the decision records and the review report, so they can never disagree.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.db import utcnow
from app.models import ChecklistItem, Decision, Project
from app.models.enums import Category
from app.services import prompts
from app.services.catalog import CATEGORY_CONCERNS, CATEGORY_LABELS, CATEGORY_TESTS
from app.services.decisions import ItemWithDecision
from app.services.gate import GateState, evaluate


@dataclass(frozen=True)
class PackItem:
    """One checklist item: its current decision and the revisions that decision superseded."""

    number: int
    entry: ItemWithDecision
    superseded: tuple[Decision, ...]

    @property
    def item(self) -> ChecklistItem:
        return self.entry.item

    @property
    def decision(self) -> Decision | None:
        return self.entry.decision

    @property
    def tests(self) -> str:
        """How a test proves the decision: the template's words, else the category's."""
        return self.item.verification or CATEGORY_TESTS[Category(self.item.category)]


@dataclass(frozen=True)
class PackSection:
    category: Category
    label: str
    concern: str
    items: tuple[PackItem, ...]


@dataclass(frozen=True)
class DesignPack:
    project: Project
    sections: tuple[PackSection, ...]
    items: tuple[PackItem, ...]
    gate: GateState
    built_at: datetime


def build(session: Session, project: Project) -> DesignPack:
    """Everything decided on the project, in checklist order, grouped by category."""
    revisions = _revisions_by_item(session, project)
    items = tuple(
        _pack_item(number, item, revisions.get(item.id, []), project)
        for number, item in enumerate(_items(session, project), start=1)
    )
    sections = tuple(
        PackSection(
            category,
            CATEGORY_LABELS[category],
            CATEGORY_CONCERNS[category],
            tuple(p for p in items if p.item.category == category),
        )
        for category in Category
    )
    gate_state = evaluate([p.entry for p in items])
    return DesignPack(project, sections, items, gate_state, utcnow())


def _items(session: Session, project: Project) -> list[ChecklistItem]:
    stmt = (
        select(ChecklistItem)
        .where(ChecklistItem.project_id == project.id)
        .order_by(ChecklistItem.position, ChecklistItem.id)
    )
    return list(session.scalars(stmt))


def _revisions_by_item(session: Session, project: Project) -> dict[int, list[Decision]]:
    """Every revision of every decision on the project, newest first per item."""
    stmt = (
        select(Decision)
        .join(ChecklistItem, ChecklistItem.id == Decision.item_id)
        .options(joinedload(Decision.decided_by))
        .where(ChecklistItem.project_id == project.id)
        .order_by(Decision.item_id, Decision.revision.desc())
    )
    by_item: dict[int, list[Decision]] = {}
    for decision in session.scalars(stmt):
        by_item.setdefault(decision.item_id, []).append(decision)
    return by_item


def _pack_item(
    number: int, item: ChecklistItem, revisions: list[Decision], project: Project
) -> PackItem:
    current = revisions[0] if revisions else None
    entry = ItemWithDecision(item, current, project.design_version)
    return PackItem(number, entry, tuple(revisions[1:]))


def markdown(pack: DesignPack) -> str:
    """The pack as one Markdown brief, for a coding agent or for the model that generates code."""
    return prompts.render("design_pack.md", pack=pack) + "\n"
