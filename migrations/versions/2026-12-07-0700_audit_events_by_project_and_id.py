"""audit events indexed by project and id

Revision ID: 4d8b2f6a1c93
Revises: 9a3f6c1e2b47
Create Date: 2026-12-07 07:00:00+00:00

A project's audit trail is paged newest first (``WHERE project_id = ? [AND id < ?] ORDER BY
id DESC LIMIT n``). With an index on project_id alone PostgreSQL read every event of the
project and sorted them for each page; on (project_id, id) it reads the page's rows in order.
The new index replaces the old one, which it covers (the foreign key's lookups use it too).
Plain CREATE and DROP INDEX on both databases.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4d8b2f6a1c93"
down_revision: str | None = "9a3f6c1e2b47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_project_id_id", "audit_events", ["project_id", "id"])
    op.drop_index("ix_audit_events_project_id", table_name="audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_events_project_id", "audit_events", ["project_id"])
    op.drop_index("ix_audit_events_project_id_id", table_name="audit_events")
