"""review revision watches users' emails

Revision ID: 6e1c0b7d52a8
Revises: 4d8b2f6a1c93
Create Date: 2026-12-07 13:00:00+00:00

The API's checklist is kept as JSON under its project's review revision, like the review page
(``app/api/projects.py``), and it names each decision's author by email as well as name: a
change to either must move the revision. Same trigger, one more column: on PostgreSQL the
deferred constraint trigger of revision 7c2e5a9d41b3 (its function is unchanged), on SQLite
the plain trigger of 5004971ffa1d.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6e1c0b7d52a8"
down_revision: str | None = "4d8b2f6a1c93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP_EVERY_PROJECT = "UPDATE projects SET review_revision = review_revision + 1"


def _watch(columns: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trg_users_review_revision ON users")
        op.execute(
            f"CREATE CONSTRAINT TRIGGER trg_users_review_revision AFTER UPDATE OF {columns}"
            " ON users DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
            " EXECUTE FUNCTION trg_users_review_revision()"
        )
        return
    op.execute("DROP TRIGGER trg_users_review_revision_upd")
    op.execute(
        f"CREATE TRIGGER trg_users_review_revision_upd AFTER UPDATE OF {columns} ON users"
        f" BEGIN {BUMP_EVERY_PROJECT}; END"
    )


def upgrade() -> None:
    _watch("name, email")


def downgrade() -> None:
    _watch("name")
