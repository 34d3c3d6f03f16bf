"""Decisions: append-only revisions per checklist item; the newest is current."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from app import live
from app.errors import Conflict, NotFound
from app.models import ChecklistItem, Decision, Meeting, MeetingAttendee, Project, User
from app.schemas.checklist import ChecklistItemCreate, DecisionWrite
from app.services import audit
from app.services.projects import get_project, next_item_position


@dataclass(frozen=True)
class ItemWithDecision:
    """A checklist item and its current decision, judged against the design version."""

    item: ChecklistItem
    decision: Decision | None
    design_version: int

    @property
    def item_id(self) -> int:
        return self.item.id

    @property
    def category(self) -> str:
        return self.item.category

    @property
    def title(self) -> str:
        return self.item.title

    @property
    def undecided(self) -> bool:
        return self.decision is None

    @property
    def stale(self) -> bool:
        return self.decision is not None and self.decision.design_version < self.design_version

    @property
    def state(self) -> str:
        if self.decision is None:
            return "open"
        return "stale" if self.stale else self.decision.status


def is_stale(decision: Decision, project: Project) -> bool:
    return decision.design_version < project.design_version


def checklist(session: Session, project: Project) -> list[ItemWithDecision]:
    """Every item of the project with its current decision, in two statements at most."""
    rows = session.execute(_CHECKLIST, {"project_id": project.id})
    return [ItemWithDecision(item, decision, project.design_version) for item, decision in rows]


def _build_checklist_statement() -> Select[ChecklistItem, Decision]:
    """Each item of a project with its newest decision revision, if any, and who made it."""
    latest = (
        select(Decision.item_id, func.max(Decision.revision).label("revision"))
        .join(ChecklistItem, ChecklistItem.id == Decision.item_id)
        .where(ChecklistItem.project_id == bindparam("project_id"))
        .group_by(Decision.item_id)
        .subquery()
    )
    return (
        select(ChecklistItem, Decision)
        .outerjoin(latest, latest.c.item_id == ChecklistItem.id)
        .outerjoin(
            Decision,
            and_(Decision.item_id == latest.c.item_id, Decision.revision == latest.c.revision),
        )
        .options(joinedload(Decision.decided_by))
        .where(ChecklistItem.project_id == bindparam("project_id"))
        .order_by(ChecklistItem.position, ChecklistItem.id)
    )


# Built once: composing it (a subquery, two joins, an eager load) cost about as much as
# running it, on every review page and every checklist read.
_CHECKLIST = _build_checklist_statement()


def get_item(session: Session, item_id: int) -> ChecklistItem:
    item = session.get(ChecklistItem, item_id)
    if item is None:
        raise NotFound(f"Checklist item {item_id} does not exist")
    return item


def add_item(
    session: Session, *, project_id: int, data: ChecklistItemCreate, actor: User
) -> ItemWithDecision:
    project = get_project(session, project_id)
    item = ChecklistItem(
        project_id=project.id,
        category=data.category,
        title=data.title,
        question=data.question,
        position=next_item_position(session, project.id),
        custom=True,
    )
    session.add(item)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="checklist_item.created",
        entity_type="checklist_item",
        entity_id=item.id,
        project_id=project.id,
        after=data.model_dump(mode="json"),
    )
    live.announce(session, f"project:{project.id}", {"type": "item", "item_id": item.id})
    return ItemWithDecision(item, None, project.design_version)


def current_decision(session: Session, item_id: int) -> Decision | None:
    stmt = (
        select(Decision)
        .options(joinedload(Decision.decided_by))
        .where(Decision.item_id == item_id)
        .order_by(Decision.revision.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def history(session: Session, *, item_id: int) -> tuple[ChecklistItem, list[Decision]]:
    item = get_item(session, item_id)
    stmt = (
        select(Decision)
        .options(joinedload(Decision.decided_by))
        .where(Decision.item_id == item_id)
        .order_by(Decision.revision.desc())
    )
    return item, list(session.scalars(stmt))


def record_decision(
    session: Session,
    *,
    item_id: int,
    data: DecisionWrite,
    actor: User,
    meeting: Meeting | None = None,
) -> ItemWithDecision:
    """Append a revision; refuse one based on anything but the current revision.

    In a live ``meeting`` the revision also records who was in the room.
    """
    item = get_item(session, item_id)
    project = get_project(session, item.project_id)
    if meeting is not None:
        _check_meeting_is_on(meeting, project)
    current = current_decision(session, item_id)
    _check_based_on_current(item, current, data.version)
    decision = Decision(
        item_id=item.id,
        revision=(current.revision if current else 0) + 1,
        status=data.status,
        summary=data.summary,
        rationale=data.rationale,
        alternatives=list(data.alternatives),
        design_version=project.design_version,
        decided_by=actor,
        meeting_id=meeting.id if meeting else None,
        attendees=_attendees_present(session, meeting) if meeting else [],
    )
    _insert_revision(session, decision, item)
    audit.record(
        session,
        actor=actor,
        action="decision.recorded",
        entity_type="decision",
        entity_id=decision.id,
        project_id=project.id,
        before=_decision_snapshot(current) if current else None,
        after=_decision_snapshot(decision),
    )
    live.announce(
        session,
        f"project:{project.id}",
        {"type": "decision", "item_id": item.id, "revision": decision.revision},
    )
    if meeting is not None:
        live.announce(
            session,
            f"meeting:{meeting.id}",
            {"type": "decision", "item_id": item.id, "revision": decision.revision},
        )
    return ItemWithDecision(item, decision, project.design_version)


def _check_meeting_is_on(meeting: Meeting, project: Project) -> None:
    if meeting.project_id != project.id:
        raise Conflict(f"Meeting {meeting.id} is about another project")
    if meeting.ended_at is not None:
        raise Conflict(f"Meeting {meeting.id} has ended")


def _attendees_present(session: Session, meeting: Meeting) -> list[dict[str, Any]]:
    """Who is in the room now: joined and not left, in the order they joined."""
    stmt = (
        select(User.id, User.name, User.email)
        .join(MeetingAttendee, MeetingAttendee.user_id == User.id)
        .where(MeetingAttendee.meeting_id == meeting.id, MeetingAttendee.left_at.is_(None))
        .order_by(MeetingAttendee.joined_at, MeetingAttendee.id)
    )
    return [
        {"user_id": user_id, "name": name, "email": email}
        for user_id, name, email in session.execute(stmt)
    ]


def _check_based_on_current(
    item: ChecklistItem, current: Decision | None, based_on: int | None
) -> None:
    current_revision = current.revision if current else 0
    if based_on is None and current is None:
        return
    if based_on is None:
        raise Conflict(
            f"Item {item.id} already has a decision (revision {current_revision}); "
            f"send version {current_revision} to supersede it",
            current_revision=current_revision,
        )
    if based_on != current_revision:
        raise Conflict(
            f"Item {item.id} is at revision {current_revision}; "
            f"your decision was based on revision {based_on}",
            current_revision=current_revision,
        )


def _insert_revision(session: Session, decision: Decision, item: ChecklistItem) -> None:
    """The unique (item, revision) pair turns a concurrent writer into a 409."""
    try:
        with session.begin_nested():
            session.add(decision)
    except IntegrityError as exc:
        raise Conflict(
            f"Someone recorded a decision on item {item.id} at the same time; reload it"
        ) from exc


def _decision_snapshot(decision: Decision) -> dict[str, Any]:
    return {
        "revision": decision.revision,
        "status": decision.status,
        "summary": decision.summary,
        "rationale": decision.rationale,
        "alternatives": list(decision.alternatives),
        "design_version": decision.design_version,
    }
