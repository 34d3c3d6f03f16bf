"""Typed SQLAlchemy models; importing this package registers every table."""

from app.models.audit import AuditEvent
from app.models.instance import InstanceSetting
from app.models.project import ChecklistItem, Decision, Generation, Project
from app.models.user import ApiToken, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "ChecklistItem",
    "Decision",
    "Generation",
    "InstanceSetting",
    "Project",
    "User",
]
