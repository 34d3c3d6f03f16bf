"""/healthz reports whether the app can reach its database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import migrate
from app.config import normalise_database_url
from app.main import create_app
from tests.api.asserts import assert_problem
from tests.conftest import _server_url, is_postgres, make_settings


@pytest.mark.skipif(not is_postgres(), reason="needs a database server that can go away")
def test_healthz_is_a_503_problem_while_the_database_is_unreachable(
    scratch_database_url: str,
) -> None:
    response = answer_once_the_database_is_gone(scratch_database_url, "/healthz")
    assert_problem(response, 503)
    assert response.headers["retry-after"] == "2"


def answer_once_the_database_is_gone(database_url: str, path: str) -> Response:
    """``path`` read from an app whose database answered it once and was then dropped."""
    migrate.upgrade(database_url)
    app = create_app(make_settings(database_url))
    with TestClient(app) as client:
        assert client.get(path).status_code == 200
        app.state.db.engine.dispose()  # so the next request needs a new connection
        drop_database(database_url)
        return client.get(path)


def drop_database(database_url: str) -> None:
    name = make_url(database_url).database
    admin = create_engine(normalise_database_url(_server_url()), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
