"""draft attempts

Revision ID: 7c41d2e8a9f3
Revises: 5e2c9a7b3d18
Create Date: 2026-12-06 20:10:00+00:00

Every failed model attempt behind a draft's answer, as replies store theirs. Plain ADD and
DROP COLUMN on both databases (SQLite has both since 3.35), as for the runner column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c41d2e8a9f3"
down_revision: str | None = "5e2c9a7b3d18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "drafts",
        sa.Column("attempts", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("drafts", "attempts")
