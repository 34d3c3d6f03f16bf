"""project debate revision: how many of the review revision's changes were debates'

Revision ID: 1b7d0e93c5a2
Revises: 3f8a61c2d9e4
Create Date: 2026-12-03 19:00:00+00:00

``projects.debate_revision`` counts the changes to a project's threads and the counted
columns of their messages, the ones the review page shows in its debates section. Their
triggers now bump it together with ``review_revision``, in one statement, so
``review_revision - debate_revision`` counts every other change the page shows: while it
stands still, the rest of the page (the design, the checklist, the gate) can be kept, and a
posted question re-renders only the debates section.

The triggers' statements are read back from the catalogue and rewritten rather than
repeated here. Plain ADD and DROP COLUMN on both databases: a batch migration on SQLite
would drop the projects table's triggers (and a later one that recreates the threads or
messages table must create these triggers again, with both counters).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1b7d0e93c5a2"
down_revision: str | None = "3f8a61c2d9e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_ONLY = "UPDATE projects SET review_revision = review_revision + 1"
REVIEW_AND_DEBATE = f"{REVIEW_ONLY}, debate_revision = debate_revision + 1"
DEBATE_TABLES = ("threads", "messages")

SQLITE_TRIGGERS = sa.text(
    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table"
    " AND name LIKE 'trg%review_revision%' ORDER BY name"
)
POSTGRES_FUNCTION = sa.text("SELECT pg_get_functiondef(CAST(:name AS regproc))")


def _rewrite(definition: str, old: str, new: str) -> str:
    if old not in definition:
        raise RuntimeError(f"unexpected review-revision trigger, not rewritten: {definition}")
    return definition.replace(old, new)


def _rewrite_triggers(old: str, new: str) -> None:
    bind = op.get_bind()
    for table in DEBATE_TABLES:
        if bind.dialect.name == "postgresql":
            name = f"trg_{table}_review_revision"
            definition = bind.execute(POSTGRES_FUNCTION, {"name": name}).scalar_one()
            # CREATE OR REPLACE FUNCTION: the (deferred) triggers calling it stay as they are.
            bind.exec_driver_sql(_rewrite(definition, old, new))
            continue
        triggers = bind.execute(SQLITE_TRIGGERS, {"table": table}).all()
        if not triggers:
            raise RuntimeError(f"no review-revision triggers on {table}")
        for name, definition in triggers:
            bind.exec_driver_sql(f"DROP TRIGGER {name}")
            bind.exec_driver_sql(_rewrite(definition, old, new))


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("debate_revision", sa.Integer(), server_default="0", nullable=False)
    )
    _rewrite_triggers(REVIEW_ONLY, REVIEW_AND_DEBATE)


def downgrade() -> None:
    # The triggers first: SQLite refuses to drop a column a trigger names.
    _rewrite_triggers(REVIEW_AND_DEBATE, REVIEW_ONLY)
    op.drop_column("projects", "debate_revision")
