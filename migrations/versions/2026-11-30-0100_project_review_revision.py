"""project review revision, kept by triggers

Revision ID: 5004971ffa1d
Revises: 9bd0c58140aa
Create Date: 2026-11-30 01:00:00.000000+00:00

``projects.review_revision`` counts changes to what a project's review page shows: the
project itself, its checklist items and decisions, threads and the counted columns of their
messages, code generations, meetings starting and ending, and the names of users (decision
authors). Triggers keep it, so every writer counts, the app's services, bulk updates, the
CLI and another process alike; a rendered page cached under one revision is never served
once the data under it changed. A streamed reply's text saves (content, timings) do not
count: the page shows no reply text.

On SQLite a batch migration that recreates one of these tables drops its triggers; such a
migration must create them again (``create_triggers``).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import op

revision: str = "5004971ffa1d"
down_revision: str | None = "9bd0c58140aa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = "UPDATE projects SET review_revision = review_revision + 1"


@dataclass(frozen=True)
class Watched:
    """A table whose changes bump the revision of the project(s) a row belongs to."""

    table: str
    # The project a row belongs to, with {row} for NEW or OLD; None: every project.
    project_of: str | None
    # Updates count only when one of these columns is set; None: any update counts.
    update_columns: tuple[str, ...] | None = None
    inserts_and_deletes: bool = True


WATCHED = (
    Watched(
        "projects",
        "{row}.id",
        (
            "name",
            "problem",
            "architecture",
            "data_model",
            "constraints",
            "blind_first",
            "template",
            "token_budget",
            "version",
            "design_version",
        ),
        inserts_and_deletes=False,
    ),
    Watched("checklist_items", "{row}.project_id"),
    Watched("decisions", "(SELECT project_id FROM checklist_items WHERE id = {row}.item_id)"),
    Watched("threads", "{row}.project_id"),
    Watched(
        "messages",
        "(SELECT project_id FROM threads WHERE id = {row}.thread_id)",
        (
            "thread_id",
            "turn",
            "role",
            "status",
            "model",
            "requested_model",
            "flags",
            "judgement",
            "tokens_in",
            "tokens_out",
            "cost",
        ),
    ),
    Watched("generations", "{row}.project_id", ("status", "based_on", "created_at")),
    Watched("meetings", "{row}.project_id", ("project_id", "ended_at")),
    Watched("users", None, ("name",), inserts_and_deletes=False),
)


def _bump(watched: Watched, rows: tuple[str, ...]) -> str:
    """The statement that bumps the revision of the projects of ``rows`` (NEW, OLD)."""
    if watched.project_of is None:
        return BUMP
    projects = ", ".join(watched.project_of.format(row=row) for row in rows)
    return f"{BUMP} WHERE id IN ({projects})"


def _events(watched: Watched) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name suffix, trigger event, the rows whose projects are bumped) for each event."""
    columns = f" OF {', '.join(watched.update_columns)}" if watched.update_columns else ""
    events = [("upd", f"UPDATE{columns}", ("OLD", "NEW"))]
    if watched.inserts_and_deletes:
        events += [("ins", "INSERT", ("NEW",)), ("del", "DELETE", ("OLD",))]
    return events


def _name(watched: Watched) -> str:
    return f"trg_{watched.table}_review_revision"


def _sqlite_statements(watched: Watched) -> tuple[list[str], list[str]]:
    """SQLite: one trigger per event, each running the bump (no functions there)."""
    create, drop = [], []
    for suffix, event, rows in _events(watched):
        name = f"{_name(watched)}_{suffix}"
        create.append(
            f"CREATE TRIGGER {name} AFTER {event} ON {watched.table} "
            f"BEGIN {_bump(watched, rows)}; END"
        )
        drop.append(f"DROP TRIGGER IF EXISTS {name}")
    return create, drop


def _postgres_statements(watched: Watched) -> tuple[list[str], list[str]]:
    """PostgreSQL: one trigger function per table, branching on the operation."""
    name = _name(watched)
    branches = "".join(
        f"IF TG_OP = '{event.split()[0]}' THEN {_bump(watched, rows)}; END IF; "
        for _suffix, event, rows in _events(watched)
    )
    events = " OR ".join(event for _suffix, event, _rows in _events(watched))
    create = [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {branches}RETURN NULL; END $$",
        f"CREATE TRIGGER {name} AFTER {events} ON {watched.table} "
        f"FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]
    drop = [
        f"DROP TRIGGER IF EXISTS {name} ON {watched.table}",
        f"DROP FUNCTION IF EXISTS {name}()",
    ]
    return create, drop


def _statements() -> tuple[list[str], list[str]]:
    """Every CREATE for the current database, and every DROP that undoes them."""
    make = (
        _postgres_statements if op.get_bind().dialect.name == "postgresql" else _sqlite_statements
    )
    create: list[str] = []
    drop: list[str] = []
    for watched in WATCHED:
        made, dropped = make(watched)
        create += made
        drop += dropped
    return create, drop


def create_triggers() -> None:
    for statement in _statements()[0]:
        op.execute(statement)


def drop_triggers() -> None:
    for statement in _statements()[1]:
        op.execute(statement)


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review_revision", sa.Integer(), server_default="0", nullable=False)
        )
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("review_revision")
