"""A token's last use is recorded, and recording it never needs a second pooled connection
while the request still holds its own: enough requests doing that at once deadlock the pool."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from app.db import Database
from app.models import ApiToken
from app.models.enums import Role
from tests import factories
from tests.conftest import Actor, make_actor


def _last_used(db: Database, actor: Actor) -> Any:
    with db.transaction(write=False) as session:
        token = session.scalars(select(ApiToken).where(ApiToken.user_id == actor.user_id)).one()
        return token.last_used_at


@contextmanager
def _connections_held_while_touching(db: Database) -> Iterator[list[int]]:
    """How many pooled connections were checked out when each last-use update ran."""
    held: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            held.append(db.engine.pool.checkedout())  # type: ignore[attr-defined]

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield held
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


@pytest.mark.parametrize("path", ["/api/v1/projects", "/api/v1/projects/{id}/gate"])
def test_a_read_records_the_use_with_its_own_connection_given_back(
    client: TestClient, db: Database, path: str
) -> None:
    owner = make_actor(db, Role.MEMBER)
    project = factories.create_project(client, owner)
    reader = make_actor(db, Role.VIEWER)
    assert _last_used(db, reader) is None
    with _connections_held_while_touching(db) as held:
        response = client.get(path.format(id=project["id"]), headers=reader.headers)
    assert response.status_code == 200
    assert _last_used(db, reader) is not None
    assert held == [1]


def test_a_write_records_the_use_in_its_own_transaction(client: TestClient, db: Database) -> None:
    writer = make_actor(db, Role.MEMBER)
    with _connections_held_while_touching(db) as held:
        factories.create_project(client, writer)
    assert _last_used(db, writer) is not None
    assert held == [1]


def test_a_refused_token_records_nothing(client: TestClient, db: Database) -> None:
    with _connections_held_while_touching(db) as held:
        response = client.get("/api/v1/projects", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert held == []
