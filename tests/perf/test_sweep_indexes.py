"""The sweep for work left behind reads partial indexes of the unfinished rows only.

Without them each sweep read every message (52 ms over 161,280 messages on PostgreSQL,
docs/RELIABILITY.md). The indexes' predicates are SQL text in the models, written apart
from the services' constants the sweep filters by (``debates.STREAMING_REPLY`` and the
others): if the two drift apart, the planner can no longer use an index, and this fails.
PostgreSQL only: SQLite serves one process, which never sweeps.
"""

import pytest
from sqlalchemy import text

from app.db import Database
from app.services.recovery import UNFINISHED_WORK_RUNNERS
from tests.conftest import is_postgres

pytestmark = pytest.mark.skipif(not is_postgres(), reason="only PostgreSQL servers sweep")
INDEXES = (
    "ix_messages_streaming_runner",
    "ix_generations_unfinished_runner",
    "ix_drafts_pending_runner",
)


def test_each_part_of_the_sweep_reads_its_partial_index(db: Database) -> None:
    # The sweep's parameters are bound at each execution, and PostgreSQL plans with their
    # values, as it does here with them written in.
    query = UNFINISHED_WORK_RUNNERS.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.reads() as session:
        # Empty tables make a sequential scan cheapest whatever the indexes: rule it out,
        # so the plan shows which index, if any, can answer each part.
        session.execute(text("SET enable_seqscan = off"))
        try:
            plan = "\n".join(session.scalars(text(f"EXPLAIN {query}")))
        finally:
            session.execute(text("RESET enable_seqscan"))
    for index in INDEXES:
        assert index in plan, f"{index} is not used:\n{plan}"
    assert "Seq Scan" not in plan, plan
