from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Draft(Base):
    """A review started from a one-line request: a problem statement and proposed items
    that become a project only once the team has accepted, edited or dropped them."""

    __tablename__ = "drafts"
    # Drafts waiting for the model only (app/services/recovery.py), as for messages.
    __table_args__ = (
        Index(
            "ix_drafts_pending_runner",
            "runner",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    problem: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    # pending while the model reads the request, then ready (with or without proposals).
    status: Mapped[str] = mapped_column(String(16))
    # The server process running it while unfinished (app/runners.py); None when unknown.
    runner: Mapped[int | None]
    model: Mapped[str | None] = mapped_column(String(200))
    # Why the draft has no proposals (no model, or the model failed), in words.
    note: Mapped[str] = mapped_column(Text, default="")
    prompt: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Every failed attempt (retries, fallbacks, breaker refusals) behind the model's answer,
    # as for a reply.
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # The tokens and cost of all its attempts; they do not count against a project's budget.
    tokens_in: Mapped[int | None]
    tokens_out: Mapped[int | None]
    cost: Mapped[float | None] = mapped_column(Float)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DraftProposal(Base):
    """A focus item the model proposed; pending until the team accepts or drops it."""

    __tablename__ = "draft_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
