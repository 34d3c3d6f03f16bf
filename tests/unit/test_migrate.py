"""Start-up's migration check: it answers from the files and the alembic_version row alone,
and builds Alembic only when the database is behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from app import migrate
from app.config import normalise_database_url
from tests.test_migrations import _tables

ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_REVISION = "0123456789ab"


def _alembic_heads() -> set[str]:
    return set(ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads())


def _execute(url: str, statement: str) -> None:
    engine = create_engine(normalise_database_url(url))
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def test_the_heads_read_from_the_files_are_alembics_heads() -> None:
    graph = migrate.script_revisions()
    assert migrate.head_revisions(graph) == _alembic_heads()
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert set(graph) == {revision.revision for revision in script.walk_revisions()}


def test_a_fresh_database_is_upgraded_to_head(scratch_database_url: str) -> None:
    assert migrate.ensure_current(scratch_database_url) is migrate.Outcome.UPGRADED
    assert migrate.database_revisions(scratch_database_url) == _alembic_heads()
    assert {"projects", "checklist_items", "api_tokens"} <= _tables(scratch_database_url)


def test_a_database_one_revision_behind_is_upgraded(scratch_database_url: str) -> None:
    migrate.upgrade(scratch_database_url, "head")
    migrate.downgrade(scratch_database_url, "head-1")
    behind = migrate.database_revisions(scratch_database_url)
    assert behind
    assert behind != _alembic_heads()
    assert migrate.ensure_current(scratch_database_url) is migrate.Outcome.UPGRADED
    assert migrate.database_revisions(scratch_database_url) == _alembic_heads()


def test_a_database_at_head_runs_nothing_and_never_imports_alembic(
    scratch_database_url: str,
) -> None:
    migrate.upgrade(scratch_database_url)
    probe = (
        "import sys; from app import migrate; "
        f"print(migrate.ensure_current({scratch_database_url!r}).value); "
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["current", "[]"]


def test_an_unknown_revision_is_refused_and_left_alone(scratch_database_url: str) -> None:
    migrate.upgrade(scratch_database_url)
    _execute(scratch_database_url, f"UPDATE alembic_version SET version_num = '{UNKNOWN_REVISION}'")
    with pytest.raises(migrate.MigrationError, match=UNKNOWN_REVISION):
        migrate.ensure_current(scratch_database_url)
    assert migrate.database_revisions(scratch_database_url) == {UNKNOWN_REVISION}


def test_serve_refuses_an_unknown_revision_with_a_message(scratch_database_url: str) -> None:
    migrate.upgrade(scratch_database_url)
    _execute(scratch_database_url, f"UPDATE alembic_version SET version_num = '{UNKNOWN_REVISION}'")
    env = {**os.environ, "DESIGNGATE_DATABASE_URL": scratch_database_url}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "designgate"), "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"error: the database is at revision {UNKNOWN_REVISION}" in done.stderr
    assert "Traceback" not in done.stderr
