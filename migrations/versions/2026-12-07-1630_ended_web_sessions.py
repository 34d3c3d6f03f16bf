"""ended web sessions

Revision ID: b5e2d7a9c031
Revises: 6e1c0b7d52a8
Create Date: 2026-12-07 16:30:00+00:00

Signing out ends the browser session it is sent from, not every session of the user: the
ids of sessions signed out on their own device are kept until their cookies expire. Ending
every session at once (deactivation, "Sign out everywhere") still moves the user's
``session_epoch`` on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5e2d7a9c031"
down_revision: str | None = "6e1c0b7d52a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_web_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_ended_web_sessions")),
    )
    op.create_index(
        op.f("ix_ended_web_sessions_ended_at"), "ended_web_sessions", ["ended_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ended_web_sessions_ended_at"), table_name="ended_web_sessions")
    op.drop_table("ended_web_sessions")
