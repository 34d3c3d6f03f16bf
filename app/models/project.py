from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.user import User


class Project(Base):
    """The design under review.

    ``version`` changes on every edit (optimistic concurrency); ``design_version``
    only when the problem, architecture or data model change, which is what makes
    earlier decisions stale.
    """

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    problem: Mapped[str] = mapped_column(Text)
    architecture: Mapped[str] = mapped_column(Text, default="")
    data_model: Mapped[str] = mapped_column(Text, default="")
    constraints: Mapped[str] = mapped_column(Text, default="")
    blind_first: Mapped[bool] = mapped_column(default=True)
    # The checklist template the project started from (a label; the items are copied).
    template: Mapped[str] = mapped_column(String(64), default="generic-service")
    token_budget: Mapped[int | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(default=1)
    design_version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Counts changes to what the review page shows; database triggers keep it (see the
    # migration "project review revision"). Read it with ``review.page_revisions``: an object
    # loaded earlier holds an old value.
    review_revision: Mapped[int] = mapped_column(default=0, server_default="0")
    # How many of those changes were to threads and their messages' counted columns (the
    # page's debates section); bumped with review_revision by the same triggers (migration
    # "project debate revision"). The difference counts the changes to the rest of the page.
    debate_revision: Mapped[int] = mapped_column(default=0, server_default="0")

    __mapper_args__ = {"version_id_col": version}


class ChecklistItem(Base):
    __tablename__ = "checklist_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    position: Mapped[int]
    custom: Mapped[bool] = mapped_column(default=False)
    # How a test would prove the decision is implemented (from the template; may be empty).
    verification: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Decision(Base):
    """One revision of the decision on a checklist item; the newest is current."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("item_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("checklist_items.id", ondelete="CASCADE"), index=True
    )
    revision: Mapped[int]
    status: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    rationale: Mapped[str] = mapped_column(Text)
    alternatives: Mapped[list[str]] = mapped_column(JSON, default=list)
    design_version: Mapped[int]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when recorded in a live meeting: who was in the room.
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"))
    attendees: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    decided_by: Mapped["User | None"] = relationship(lazy="raise")


class Generation(Base):
    """Code generated from the design once the gate was open."""

    __tablename__ = "generations"
    # Unfinished generations only (app/services/recovery.py), as for messages.
    __table_args__ = (
        Index(
            "ix_generations_unfinished_runner",
            "runner",
            postgresql_where=text("status IN ('pending', 'streaming')"),
            sqlite_where=text("status IN ('pending', 'streaming')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    # The server process running it while unfinished (app/runners.py); None when unknown.
    runner: Mapped[int | None]
    model: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    based_on: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Every failed attempt (retries, fallbacks, breaker refusals) behind it, and the tokens
    # and cost of all its attempts, as for a reply; they do not count against the budget.
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    tokens_in: Mapped[int | None]
    tokens_out: Mapped[int | None]
    cost: Mapped[float | None] = mapped_column(Float)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
