"""meeting coverage presence and vote revision

Revision ID: f02c24ad1d21
Revises: 3754459cd0d7
Create Date: 2026-11-24 12:44:43.191152+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f02c24ad1d21"
down_revision: str | None = "3754459cd0d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_attendees", schema=None) as batch_op:
        batch_op.add_column(sa.Column("left_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("meeting_votes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision_revision", sa.Integer(), nullable=True))

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        # Meetings held before this revision covered nothing on record.
        batch_op.add_column(
            sa.Column("covered_item_ids", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_column("covered_item_ids")

    with op.batch_alter_table("meeting_votes", schema=None) as batch_op:
        batch_op.drop_column("decision_revision")

    with op.batch_alter_table("meeting_attendees", schema=None) as batch_op:
        batch_op.drop_column("left_at")
