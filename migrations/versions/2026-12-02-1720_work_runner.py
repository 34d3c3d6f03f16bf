"""the server process running each unfinished reply, generation and draft

Revision ID: 3f8a61c2d9e4
Revises: 7c2e5a9d41b3
Create Date: 2026-12-02 17:20:00+00:00

Plain ADD and DROP COLUMN on both databases (SQLite has both since 3.35): a batch
(copy-and-move) migration on SQLite would drop the review-revision triggers of the tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f8a61c2d9e4"
down_revision: str | None = "7c2e5a9d41b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("messages", "generations", "drafts")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("runner", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "runner")
