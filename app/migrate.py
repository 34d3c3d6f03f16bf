"""Alembic is the only way the schema is made; these helpers run it from code.

Start-up calls ``ensure_current``: it reads the revision ids from the migration files and the
database's ``alembic_version`` row, and only builds Alembic's machinery (its import alone pulls
in Mako and Pygments) when there is something to apply.
"""

import ast
import enum
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from app.config import normalise_database_url

if TYPE_CHECKING:
    from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
VERSIONS_DIR = ROOT / "migrations" / "versions"
VERSION_TABLE = "alembic_version"


class MigrationError(Exception):
    """The database's schema is not one these migration files can bring to their head."""


class Outcome(enum.Enum):
    CURRENT = "current"
    UPGRADED = "upgraded"


def alembic_config(database_url: str) -> "Config":
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option(
        "sqlalchemy.url", normalise_database_url(database_url).replace("%", "%%")
    )
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def ensure_current(database_url: str, versions_dir: Path = VERSIONS_DIR) -> Outcome:
    """Bring the database to the head revision; refuse a revision the files do not know."""
    graph = script_revisions(versions_dir)
    applied = database_revisions(database_url)
    if applied == head_revisions(graph):
        return Outcome.CURRENT
    unknown = sorted(applied - graph.keys())
    if unknown:
        raise MigrationError(
            f"the database is at revision {', '.join(unknown)}, which this version of designgate "
            "does not know (was it migrated by a newer one?); nothing was changed"
        )
    upgrade(database_url)
    return Outcome.UPGRADED


def script_revisions(versions_dir: Path = VERSIONS_DIR) -> dict[str, frozenset[str]]:
    """Each migration file's revision id and the revisions it follows."""
    graph: dict[str, frozenset[str]] = {}
    for path in sorted(versions_dir.glob("*.py")):
        names = _module_constants(path, {"revision", "down_revision"})
        revision = names.get("revision")
        if isinstance(revision, str):
            graph[revision] = frozenset(_as_ids(names.get("down_revision")))
    return graph


def head_revisions(graph: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The revisions no other migration follows."""
    followed = {parent for parents in graph.values() for parent in parents}
    return frozenset(graph.keys() - followed)


def database_revisions(database_url: str) -> frozenset[str]:
    """The revisions recorded in the database; empty for a database never migrated."""
    engine = create_engine(normalise_database_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return frozenset()
            rows = connection.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(rows.scalars())
    finally:
        engine.dispose()


def _module_constants(path: Path, wanted: set[str]) -> dict[str, object]:
    """Literal module-level assignments, read without running the migration's imports."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id in wanted and value is not None:
            found[target.id] = ast.literal_eval(value)
    return found


def _as_ids(value: object) -> Iterable[str]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list):
        return tuple(str(part) for part in value)
    raise MigrationError(f"down_revision {value!r} is neither a revision id nor a list of them")
