from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from app.api.params import PathId
from app.deps import CurrentUser, SessionDep, Writer
from app.models import Meeting
from app.schemas.checklist import DecisionRead, DecisionWrite, decision_read
from app.schemas.meeting import (
    AttendeeRead,
    CurrentItemWrite,
    MeetingRead,
    VoteRead,
    VoteWrite,
)
from app.services import meetings

router = APIRouter(tags=["meetings"])


def meeting_read(session: Session, meeting: Meeting) -> MeetingRead:
    return MeetingRead(
        id=meeting.id,
        project_id=meeting.project_id,
        presenter_id=meeting.presenter_id,
        current_item_id=meeting.current_item_id,
        covered_item_ids=list(meeting.covered_item_ids),
        started_at=meeting.started_at,
        ended_at=meeting.ended_at,
        minutes=meeting.minutes,
        attendees=[AttendeeRead(**vars(a)) for a in meetings.attendees(session, meeting)],
        votes=[VoteRead(**vars(v)) for v in meetings.votes(session, meeting)],
    )


@router.post("/projects/{project_id}/meetings", status_code=status.HTTP_201_CREATED)
def start_meeting(project_id: PathId, session: SessionDep, user: Writer) -> MeetingRead:
    """Start a live meeting with you presenting; 409 when one is already running."""
    meeting = meetings.start_meeting(session, project_id=project_id, actor=user)
    return meeting_read(session, meeting)


@router.get("/meetings/{meeting_id}")
def get_meeting(meeting_id: PathId, session: SessionDep, user: CurrentUser) -> MeetingRead:
    """The meeting: current item, attendees, votes, and the minutes once it has ended."""
    return meeting_read(session, meetings.get_meeting(session, meeting_id))


@router.post("/meetings/{meeting_id}/join")
def join_meeting(meeting_id: PathId, session: SessionDep, user: Writer) -> MeetingRead:
    """Join a running meeting as an attendee."""
    return meeting_read(session, meetings.join(session, meeting_id=meeting_id, actor=user))


@router.post("/meetings/{meeting_id}/current-item")
def set_current_item(
    meeting_id: PathId, body: CurrentItemWrite, session: SessionDep, user: Writer
) -> MeetingRead:
    """Put a checklist item on every attendee's screen (presenter only)."""
    meeting = meetings.set_current_item(
        session, meeting_id=meeting_id, item_id=body.item_id, actor=user
    )
    return meeting_read(session, meeting)


@router.post("/meetings/{meeting_id}/votes")
def cast_vote(meeting_id: PathId, body: VoteWrite, session: SessionDep, user: Writer) -> VoteRead:
    """Vote agree, disagree or abstain on an item's current decision; a new vote replaces yours."""
    cast = meetings.cast_vote(
        session, meeting_id=meeting_id, item_id=body.item_id, vote=body.vote, actor=user
    )
    return VoteRead(**vars(cast))


@router.put("/meetings/{meeting_id}/items/{item_id}/decision")
def record_decision(
    meeting_id: PathId, item_id: PathId, body: DecisionWrite, session: SessionDep, user: Writer
) -> DecisionRead:
    """Record a decision in the meeting; it stores who was in the room."""
    entry = meetings.record_decision(
        session, meeting_id=meeting_id, item_id=item_id, data=body, actor=user
    )
    assert entry.decision is not None
    return decision_read(entry.decision, stale=entry.stale)


@router.post("/meetings/{meeting_id}/end")
def end_meeting(meeting_id: PathId, session: SessionDep, user: Writer) -> MeetingRead:
    """End the meeting (presenter or admin) and produce its Markdown minutes."""
    meeting = meetings.end_meeting(session, meeting_id=meeting_id, actor=user)
    return meeting_read(session, meeting)
