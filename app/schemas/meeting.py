from datetime import datetime

from pydantic import BaseModel

from app.models.enums import Vote
from app.schemas.common import Id, Read, Strict


class CurrentItemWrite(Strict):
    item_id: Id


class VoteWrite(Strict):
    item_id: Id
    vote: Vote


class AttendeeRead(BaseModel):
    user_id: int
    name: str
    email: str
    present: bool
    joined_at: datetime


class VoteRead(BaseModel):
    item_id: int
    user_id: int
    name: str
    vote: Vote
    decision_revision: int | None


class MeetingRead(Read):
    id: int
    project_id: int
    presenter_id: int | None
    current_item_id: int | None
    covered_item_ids: list[int]
    started_at: datetime
    ended_at: datetime | None
    minutes: str | None
    attendees: list[AttendeeRead]
    votes: list[VoteRead]
