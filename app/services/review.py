"""Everything the review page shows about a project, read in a handful of statements."""

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.models import ChecklistItem, Decision, Generation, Meeting, Project
from app.models.enums import Category
from app.services import meetings
from app.services.decisions import ItemWithDecision, checklist
from app.services.gate import GateState, evaluate
from app.services.generation import GenerationView, outdated_because
from app.services.projects import get_project


@dataclass(frozen=True)
class CategoryGroup:
    key: str
    items: list[ItemWithDecision]

    @property
    def decided(self) -> int:
        return sum(1 for entry in self.items if entry.state not in {"open", "stale"})

    @property
    def state(self) -> str:
        """ "open" while any item lacks a current decision, else "done"."""
        return "done" if self.items and self.decided == len(self.items) else "open"


@dataclass(frozen=True)
class Review:
    project: Project
    items: list[ItemWithDecision]
    gate: GateState
    history: dict[int, list[Decision]] = field(default_factory=dict)
    generations: list[GenerationView] = field(default_factory=list)
    meeting: Meeting | None = None

    @property
    def categories(self) -> list[CategoryGroup]:
        """The six built-in categories in their fixed order, then any other key."""
        grouped: dict[str, list[ItemWithDecision]] = defaultdict(list)
        for entry in self.items:
            grouped[entry.item.category].append(entry)
        keys = [c.value for c in Category] + sorted(set(grouped) - {c.value for c in Category})
        return [CategoryGroup(key, grouped.get(key, [])) for key in keys]

    def entry(self, item_id: int) -> ItemWithDecision | None:
        return next((e for e in self.items if e.item.id == item_id), None)


def review(session: Session, *, project_id: int, with_history: bool = True) -> Review:
    project = get_project(session, project_id)
    items = checklist(session, project)
    return Review(
        project=project,
        items=items,
        gate=evaluate(items),
        history=_history(session, project) if with_history else {},
        generations=_generations(session, project, items),
        meeting=meetings.active_meeting(session, project_id=project.id),
    )


def _history(session: Session, project: Project) -> dict[int, list[Decision]]:
    """Every revision of every item's decision, newest first, in one statement."""
    stmt = (
        select(Decision)
        .join(ChecklistItem, ChecklistItem.id == Decision.item_id)
        .options(joinedload(Decision.decided_by))
        .where(ChecklistItem.project_id == project.id)
        .order_by(Decision.item_id, Decision.revision.desc())
    )
    grouped: dict[int, list[Decision]] = defaultdict(list)
    for decision in session.scalars(stmt):
        grouped[decision.item_id].append(decision)
    return dict(grouped)


def _generations(
    session: Session, project: Project, items: list[ItemWithDecision]
) -> list[GenerationView]:
    """The ten newest runs, each judged outdated or not against the checklist now."""
    stmt = select(Generation).where(Generation.project_id == project.id)
    newest = session.scalars(stmt.order_by(Generation.id.desc()).limit(10))
    return [GenerationView(g, outdated_because(g, items)) for g in newest]
