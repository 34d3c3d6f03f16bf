"""review revision bumped at commit on PostgreSQL

Revision ID: 7c2e5a9d41b3
Revises: 5004971ffa1d
Create Date: 2026-11-30 05:00:00.000000+00:00

On PostgreSQL the triggers that keep ``projects.review_revision`` bumped the project's row
as soon as a watched row changed, so a write to a project held that row's lock from its
first insert until its commit, across the request's thread-pool hops in between: writes to
one project (a hundred replies posted at once) queued behind held locks. As deferred
constraint triggers they run at commit, and the lock is held only while the transaction
commits. Same functions, same events; SQLite's triggers are not deferrable and are left as
they are (its writers are serialised anyway).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2e5a9d41b3"
down_revision: str | None = "5004971ffa1d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The triggers of revision 5004971ffa1d, read back from the catalogue rather than repeated.
TRIGGERS = sa.text(
    "SELECT tgname, tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger"
    " WHERE tgname LIKE 'trg\\_%\\_review\\_revision' AND NOT tgisinternal ORDER BY tgname"
)
DEFERRED = " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "


def _recreate(deferred: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, definition in op.get_bind().execute(TRIGGERS).all():
        if deferred:
            definition = definition.replace("CREATE TRIGGER", "CREATE CONSTRAINT TRIGGER", 1)
            definition = definition.replace(" FOR EACH ROW ", DEFERRED, 1)
        else:
            definition = definition.replace("CREATE CONSTRAINT TRIGGER", "CREATE TRIGGER", 1)
            definition = definition.replace(DEFERRED, " FOR EACH ROW ", 1)
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(definition)


def upgrade() -> None:
    _recreate(deferred=True)


def downgrade() -> None:
    _recreate(deferred=False)
