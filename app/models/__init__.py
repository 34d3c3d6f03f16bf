"""Typed SQLAlchemy models; importing this package registers every table."""

from app.models.audit import AuditEvent
from app.models.debate import Message, Thread
from app.models.draft import Draft, DraftProposal
from app.models.instance import InstanceSetting
from app.models.login import EndedWebSession, LoginAttempt
from app.models.meeting import Meeting, MeetingAttendee, MeetingVote
from app.models.project import ChecklistItem, Decision, Generation, Project
from app.models.template import ChecklistTemplate
from app.models.user import ApiToken, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "ChecklistItem",
    "ChecklistTemplate",
    "Decision",
    "Draft",
    "DraftProposal",
    "EndedWebSession",
    "Generation",
    "InstanceSetting",
    "LoginAttempt",
    "Meeting",
    "MeetingAttendee",
    "MeetingVote",
    "Message",
    "Project",
    "Thread",
    "User",
]
