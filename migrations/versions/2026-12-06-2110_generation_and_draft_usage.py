"""generation and draft usage

Revision ID: 9a3f6c1e2b47
Revises: 7c41d2e8a9f3
Create Date: 2026-12-06 21:10:00+00:00

The tokens and cost of a generation's and a draft's model calls, and a generation's failed
attempts, as replies store theirs. Rows made before are left null (unknown), not zero.
Plain ADD and DROP COLUMN on both databases, as for the drafts' attempts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a3f6c1e2b47"
down_revision: str | None = "7c41d2e8a9f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _usage_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
    ]


def upgrade() -> None:
    op.add_column(
        "generations",
        sa.Column("attempts", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
    )
    for table in ("generations", "drafts"):
        for column in _usage_columns():
            op.add_column(table, column)


def downgrade() -> None:
    for table in ("drafts", "generations"):
        for name in ("cost", "tokens_out", "tokens_in"):
            op.drop_column(table, name)
    op.drop_column("generations", "attempts")
