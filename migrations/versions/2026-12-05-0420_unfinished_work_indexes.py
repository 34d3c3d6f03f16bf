"""partial indexes of unfinished replies, generations and drafts, by runner

Revision ID: 5e2c9a7b3d18
Revises: 1b7d0e93c5a2
Create Date: 2026-12-05 04:20:00+00:00

The PostgreSQL servers sweep every 20 s for the work of a server process that is gone
(app/services/recovery.py). Without these, each sweep read every message: 52 ms over
161,280 messages (252 MB). Each index holds only the unfinished rows. Plain CREATE INDEX on
both databases: no batch migration, which on SQLite would drop the tables' triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e2c9a7b3d18"
down_revision: str | None = "1b7d0e93c5a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, which rows are unfinished)
INDEXES = (
    ("ix_messages_streaming_runner", "messages", "status = 'streaming'"),
    ("ix_generations_unfinished_runner", "generations", "status IN ('pending', 'streaming')"),
    ("ix_drafts_pending_runner", "drafts", "status = 'pending'"),
)


def upgrade() -> None:
    for name, table, unfinished in INDEXES:
        where = sa.text(unfinished)
        op.create_index(name, table, ["runner"], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name, table, _unfinished in INDEXES:
        op.drop_index(name, table_name=table)
