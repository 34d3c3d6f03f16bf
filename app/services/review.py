"""Everything the review page shows about a project, read in a handful of statements."""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, load_only

from app.errors import NotFound
from app.models import Decision, Generation, Meeting, Project
from app.models.enums import Category
from app.services import decisions, meetings
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


@dataclass(frozen=True)
class ItemDetail:
    """One item opened on the review page: its current decision and every revision."""

    project: Project
    entry: ItemWithDecision
    history: list[Decision]


def review(session: Session, *, project_id: int) -> Review:
    """The checklist with current decisions and the gate; revision histories are read
    per item when it is opened (``item_detail``), so the page costs the same however
    many revisions there are."""
    project = get_project(session, project_id)
    items = checklist(session, project)
    return Review(
        project=project,
        items=items,
        gate=evaluate(items),
        generations=_generations(session, project, items),
        meeting=meetings.active_meeting(session, project_id=project.id),
    )


class PageRevisions(NamedTuple):
    """The review revision, and how many of its changes were to the debates section."""

    review: int
    debates: int

    @property
    def outside_debates(self) -> int:
        """Counts the changes to the rest of the page (the triggers bump both counters
        for a debate's change, only ``review`` for any other)."""
        return self.review - self.debates


def page_revisions(session: Session, *, project_id: int) -> PageRevisions:
    """How many times what the review page shows has changed (database triggers count it),
    and how many of those changes were to its debates section, in one statement.

    Read them before anything they stand for: on PostgreSQL each statement of a transaction
    sees the commits before it, so whatever is read afterwards is at least this new.
    """
    found = session.connection().execute(_PAGE_REVISIONS, {"project_id": project_id}).first()
    if found is None:
        raise NotFound(f"Project {project_id} does not exist")
    return PageRevisions(int(found[0]), int(found[1]))


_PAGE_REVISIONS = select(Project.review_revision, Project.debate_revision).where(
    Project.id == bindparam("project_id")
)


def item_detail(session: Session, *, item_id: int) -> ItemDetail:
    """An item with its revisions, newest first; the newest is the current decision."""
    item, revisions = decisions.history(session, item_id=item_id)
    project = get_project(session, item.project_id)
    current = revisions[0] if revisions else None
    entry = ItemWithDecision(item, current, project.design_version)
    return ItemDetail(project=project, entry=entry, history=revisions)


def _generations(
    session: Session, project: Project, items: list[ItemWithDecision]
) -> list[GenerationView]:
    """The ten newest runs, each judged outdated or not against the checklist now."""
    newest = session.scalars(_NEWEST_GENERATIONS, {"project_id": project.id})
    return [GenerationView(g, outdated_because(g, items)) for g in newest]


# Built once (the review page reads it on every rendering). The code itself can be large
# and the list shows only the run's status and basis.
_NEWEST_GENERATIONS = (
    select(Generation)
    .options(
        load_only(
            Generation.id,
            Generation.project_id,
            Generation.status,
            Generation.created_at,
            Generation.based_on,
        )
    )
    .where(Generation.project_id == bindparam("project_id"))
    .order_by(Generation.id.desc())
    .limit(10)
)
