"""message attempts and requested model

Revision ID: 2e4b57f5f092
Revises: f02c24ad1d21
Create Date: 2026-11-24 12:46:42.123756+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2e4b57f5f092"
down_revision: str | None = "f02c24ad1d21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_model", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("attempts", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("attempts")
        batch_op.drop_column("requested_model")
