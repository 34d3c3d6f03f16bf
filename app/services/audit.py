"""Audit trail: every write that matters leaves who, what, when, before and after."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User
from app.services.paging import Page, page_of


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    entity_type: str,
    entity_id: int | None,
    project_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        project_id=project_id,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def project_events(
    session: Session, *, project_id: int, limit: int, before: int | None = None
) -> Page[AuditEvent]:
    """Up to ``limit`` of the project's events, newest first, from those with an id below
    ``before`` (from the newest when None), and whether older ones follow."""
    stmt = select(AuditEvent).where(AuditEvent.project_id == project_id)
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)
    return page_of(session.scalars(stmt).all(), limit=limit)
