"""Live review meetings: a presenter steps through the checklist, attendees vote,
decisions record who was in the room, and the end produces Markdown minutes."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import live
from app.db import utcnow
from app.errors import Conflict, Forbidden, NotFound
from app.models import ChecklistItem, Decision, Meeting, MeetingAttendee, MeetingVote, User
from app.models.enums import Role, Vote
from app.schemas.checklist import DecisionWrite
from app.services import audit, minutes
from app.services.decisions import ItemWithDecision, checklist, current_decision, get_item
from app.services.decisions import record_decision as record_item_decision
from app.services.projects import get_project


@dataclass(frozen=True)
class Attendee:
    user_id: int
    name: str
    email: str
    present: bool
    joined_at: datetime


@dataclass(frozen=True)
class CastVote:
    item_id: int
    user_id: int
    name: str
    vote: Vote
    decision_revision: int | None


def get_meeting(session: Session, meeting_id: int) -> Meeting:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(f"Meeting {meeting_id} does not exist")
    return meeting


def active_meeting(session: Session, *, project_id: int) -> Meeting | None:
    """The project's meeting in progress, if any (there is at most one)."""
    return session.scalar(_ACTIVE_MEETING, {"project_id": project_id})


# Built once: the review page asks on every rendering.
_ACTIVE_MEETING = (
    select(Meeting)
    .where(Meeting.project_id == bindparam("project_id"), Meeting.ended_at.is_(None))
    .order_by(Meeting.id.desc())
    .limit(1)
)


def past_meetings(session: Session, *, project_id: int) -> list[Meeting]:
    stmt = (
        select(Meeting)
        .where(Meeting.project_id == project_id, Meeting.ended_at.is_not(None))
        .order_by(Meeting.id.desc())
    )
    return list(session.scalars(stmt))


def start_meeting(session: Session, *, project_id: int, actor: User) -> Meeting:
    """Open a meeting with the actor presenting the first checklist item."""
    project = get_project(session, project_id)
    running = active_meeting(session, project_id=project.id)
    if running is not None:
        raise Conflict(
            f"Meeting {running.id} is already running for this project; join it",
            meeting_id=running.id,
        )
    first = next(iter(checklist(session, project)), None)
    first_item_id = first.item.id if first else None
    meeting = Meeting(
        project_id=project.id,
        presenter_id=actor.id,
        current_item_id=first_item_id,
        covered_item_ids=[first_item_id] if first_item_id else [],
    )
    session.add(meeting)
    session.flush()
    _add_attendee(session, meeting, actor)
    audit.record(
        session,
        actor=actor,
        action="meeting.started",
        entity_type="meeting",
        entity_id=meeting.id,
        project_id=project.id,
    )
    live.announce(session, f"project:{project.id}", {"type": "meeting", "id": meeting.id})
    return meeting


def join(session: Session, *, meeting_id: int, actor: User) -> Meeting:
    """Join (or rejoin) a running meeting; viewers may watch but do not attend."""
    meeting = _running(session, meeting_id)
    attendee = _attendee(session, meeting.id, actor.id)
    if attendee is None:
        _add_attendee(session, meeting, actor)
    else:
        attendee.left_at = None
        attendee.last_seen_at = utcnow()
    _announce(session, meeting, {"type": "attendees"})
    return meeting


def connected(session: Session, *, meeting_id: int, user_id: int) -> datetime | None:
    """An attendee's live connection opened: they are present. None when they never joined."""
    now = utcnow()
    result = session.execute(
        update(MeetingAttendee)
        .where(MeetingAttendee.meeting_id == meeting_id, MeetingAttendee.user_id == user_id)
        .values(last_seen_at=now, left_at=None)
    )
    if not getattr(result, "rowcount", 0):
        return None
    live.announce(session, f"meeting:{meeting_id}", {"type": "attendees"})
    return now


def disconnected(session: Session, *, meeting_id: int, user_id: int, since: datetime) -> None:
    """A live connection opened at ``since`` closed; a newer one (a reload) keeps them present."""
    result = session.execute(
        update(MeetingAttendee)
        .where(
            MeetingAttendee.meeting_id == meeting_id,
            MeetingAttendee.user_id == user_id,
            MeetingAttendee.last_seen_at <= since,
        )
        .values(left_at=utcnow())
    )
    if getattr(result, "rowcount", 0):
        live.announce(session, f"meeting:{meeting_id}", {"type": "attendees"})


def set_current_item(session: Session, *, meeting_id: int, item_id: int, actor: User) -> Meeting:
    """Put an item on everyone's screen; only the presenter steps through the checklist."""
    meeting = _running(session, meeting_id)
    if meeting.presenter_id != actor.id:
        raise Forbidden("Only the presenter can change the current item")
    item = _item_of(session, meeting, item_id)
    meeting.current_item_id = item.id
    if item.id not in meeting.covered_item_ids:
        meeting.covered_item_ids = [*meeting.covered_item_ids, item.id]
    session.flush()
    _announce(session, meeting, {"type": "current_item", "item_id": item.id})
    return meeting


def cast_vote(
    session: Session, *, meeting_id: int, item_id: int, vote: Vote, actor: User
) -> CastVote:
    """An attendee's vote on the item's current decision; a new vote replaces the old one."""
    meeting = _running(session, meeting_id)
    _require_attendee(session, meeting, actor)
    item = _item_of(session, meeting, item_id)
    proposed = current_decision(session, item.id)
    if proposed is None:
        raise Conflict("There is no proposed decision on this item to vote on yet")
    existing = session.scalar(
        select(MeetingVote).where(
            MeetingVote.meeting_id == meeting.id,
            MeetingVote.item_id == item.id,
            MeetingVote.user_id == actor.id,
        )
    )
    if existing is None:
        cast = MeetingVote(meeting_id=meeting.id, item_id=item.id, user_id=actor.id)
        cast.vote, cast.decision_revision = vote, proposed.revision
        _insert_vote(session, cast)
    else:
        existing.vote, existing.decision_revision = vote, proposed.revision
        existing.created_at = utcnow()
        session.flush()
    _announce(session, meeting, {"type": "vote", "item_id": item.id})
    return CastVote(item.id, actor.id, actor.name, vote, proposed.revision)


def _insert_vote(session: Session, vote: MeetingVote) -> None:
    try:
        with session.begin_nested():
            session.add(vote)
    except IntegrityError as exc:
        raise Conflict("Your vote was cast twice at the same moment; try again") from exc


def record_decision(
    session: Session, *, meeting_id: int, item_id: int, data: DecisionWrite, actor: User
) -> ItemWithDecision:
    """Record a decision in the meeting: it keeps who was in the room."""
    meeting = _running(session, meeting_id)
    _require_attendee(session, meeting, actor)
    _item_of(session, meeting, item_id)
    return record_item_decision(session, item_id=item_id, data=data, actor=actor, meeting=meeting)


def end_meeting(session: Session, *, meeting_id: int, actor: User) -> Meeting:
    """End the meeting (presenter or admin) and store its Markdown minutes."""
    meeting = _running(session, meeting_id)
    if meeting.presenter_id != actor.id and actor.role != Role.ADMIN:
        raise Forbidden("Only the presenter or an admin can end the meeting")
    meeting.ended_at = utcnow()
    meeting.minutes = minutes.render(session, meeting)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="meeting.ended",
        entity_type="meeting",
        entity_id=meeting.id,
        project_id=meeting.project_id,
    )
    _announce(session, meeting, {"type": "ended"})
    live.announce(session, f"project:{meeting.project_id}", {"type": "meeting", "id": meeting.id})
    return meeting


def attendees(session: Session, meeting: Meeting) -> list[Attendee]:
    stmt = (
        select(MeetingAttendee, User)
        .join(User, User.id == MeetingAttendee.user_id)
        .where(MeetingAttendee.meeting_id == meeting.id)
        .order_by(MeetingAttendee.joined_at, MeetingAttendee.id)
    )
    return [
        Attendee(user.id, user.name, user.email, attendee.left_at is None, attendee.joined_at)
        for attendee, user in session.execute(stmt)
    ]


def is_attendee(session: Session, meeting: Meeting, user: User) -> bool:
    return _attendee(session, meeting.id, user.id) is not None


def votes(session: Session, meeting: Meeting, *, item_id: int | None = None) -> list[CastVote]:
    """Votes of the meeting (of one item when given), oldest first."""
    stmt = (
        select(MeetingVote, User.name)
        .join(User, User.id == MeetingVote.user_id)
        .where(MeetingVote.meeting_id == meeting.id)
        .order_by(MeetingVote.item_id, MeetingVote.created_at, MeetingVote.id)
    )
    if item_id is not None:
        stmt = stmt.where(MeetingVote.item_id == item_id)
    return [
        CastVote(v.item_id, v.user_id, name, Vote(v.vote), v.decision_revision)
        for v, name in session.execute(stmt)
    ]


def votes_by_item(session: Session, meeting: Meeting) -> dict[int, list[CastVote]]:
    grouped: dict[int, list[CastVote]] = defaultdict(list)
    for cast in votes(session, meeting):
        grouped[cast.item_id].append(cast)
    return dict(grouped)


def decisions_in(session: Session, meeting: Meeting) -> list[Decision]:
    """Decision revisions recorded during the meeting, in the order they were made."""
    stmt = select(Decision).where(Decision.meeting_id == meeting.id).order_by(Decision.id)
    return list(session.scalars(stmt))


def _running(session: Session, meeting_id: int) -> Meeting:
    meeting = get_meeting(session, meeting_id)
    if meeting.ended_at is not None:
        raise Conflict(f"Meeting {meeting_id} has ended")
    return meeting


def _attendee(session: Session, meeting_id: int, user_id: int) -> MeetingAttendee | None:
    return session.scalar(
        select(MeetingAttendee).where(
            MeetingAttendee.meeting_id == meeting_id, MeetingAttendee.user_id == user_id
        )
    )


def _add_attendee(session: Session, meeting: Meeting, user: User) -> None:
    if user.role == Role.VIEWER:
        raise Forbidden("Viewers can follow a meeting but not join it")
    try:
        with session.begin_nested():
            session.add(MeetingAttendee(meeting_id=meeting.id, user_id=user.id))
    except IntegrityError:
        pass  # joined twice at the same moment: the first join stands


def _require_attendee(session: Session, meeting: Meeting, user: User) -> None:
    if _attendee(session, meeting.id, user.id) is None:
        raise Conflict("Join the meeting first")


def _item_of(session: Session, meeting: Meeting, item_id: int) -> ChecklistItem:
    item = get_item(session, item_id)
    if item.project_id != meeting.project_id:
        raise NotFound(f"Checklist item {item_id} is not part of this meeting's project")
    return item


def _announce(session: Session, meeting: Meeting, event: live.Event) -> None:
    live.announce(session, f"meeting:{meeting.id}", event)
