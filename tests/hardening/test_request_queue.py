"""A request waits for its turn at the database (the request slots) for at most
DESIGNGATE_REQUEST_QUEUE_TIMEOUT_S; past it, 503 with Retry-After, and nothing written.

The slots are taken on the app's own event loop, through the test client's portal, as
requests already in progress would hold them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from app import db as db_module
from app.config import Settings
from app.db import Database
from app.flood_warnings import FloodWarning
from app.main import create_app
from app.models.enums import Role
from app.problems import PROBLEM_JSON
from tests import factories
from tests.conftest import make_actor, make_settings
from tests.hardening.web_helpers import sign_in, snapshot

QUEUE_TIMEOUT_S = 0.3
BUSY = "urn:designgate:problem:server-busy"


@pytest.fixture
def queue_settings(database_url: str) -> Settings:
    return make_settings(database_url, request_queue_timeout_s=QUEUE_TIMEOUT_S)


@pytest.fixture
def busy_client(queue_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(queue_settings)) as client:
        yield client


def _db(client: TestClient) -> Database:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    return db


@contextmanager
def every_slot_held(client: TestClient, *, write: bool) -> Iterator[None]:
    """Every read or write slot taken for the block, then given back."""
    db = _db(client)
    slots = range(db.write_slots if write else db.read_slots)

    async def take() -> None:
        for _ in slots:
            await db.request_slots(write=write).acquire()

    async def give_back() -> None:
        for _ in slots:
            db.request_slots(write=write).release()

    client.portal.call(take)  # type: ignore[union-attr]
    try:
        yield
    finally:
        client.portal.call(give_back)  # type: ignore[union-attr]


def test_a_write_that_waits_too_long_is_refused_with_retry_after_and_writes_nothing(
    busy_client: TestClient, database_url: str
) -> None:
    member = make_actor(_db(busy_client), Role.MEMBER)
    project = factories.create_project(busy_client, member)
    before = snapshot(database_url)
    with every_slot_held(busy_client, write=True):
        refused = busy_client.post(
            "/api/v1/projects", json={"name": "Late", "problem": "p"}, headers=member.headers
        )
        read_meanwhile = busy_client.get(
            f"/api/v1/projects/{project['id']}/gate", headers=member.headers
        )

    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["type"] == BUSY
    assert "too busy" in refused.json()["detail"]
    assert read_meanwhile.status_code == 200  # reads have slots of their own
    assert snapshot(database_url) == before

    created = busy_client.post(
        "/api/v1/projects", json={"name": "Later", "problem": "p"}, headers=member.headers
    )
    assert created.status_code == 201, created.text


def test_a_read_that_waits_too_long_is_refused_and_the_next_is_served(
    busy_client: TestClient,
) -> None:
    member = make_actor(_db(busy_client), Role.MEMBER)
    project = factories.create_project(busy_client, member)
    gate = f"/api/v1/projects/{project['id']}/gate"
    with every_slot_held(busy_client, write=False):
        refused = busy_client.get(gate, headers=member.headers)

    assert refused.status_code == 503, refused.text
    assert refused.json()["type"] == BUSY
    assert refused.headers["retry-after"] == "5"
    assert busy_client.get(gate, headers=member.headers).status_code == 200


def test_a_form_sent_while_the_server_is_busy_gets_a_readable_message(
    busy_client: TestClient, database_url: str
) -> None:
    member = make_actor(_db(busy_client), Role.MEMBER)
    csrf = sign_in(busy_client, member.email)
    before = snapshot(database_url)
    form = {"name": "Ledger", "problem": "p", "csrf_token": csrf}
    with every_slot_held(busy_client, write=True):
        full_page = busy_client.post("/projects", data=form)
        in_page = busy_client.post("/projects", data=form, headers={"HX-Request": "true"})

    assert full_page.status_code == 503
    assert full_page.headers["content-type"].startswith("text/html")
    assert full_page.headers["retry-after"] == "5"
    assert "Server busy" in full_page.text
    assert "send it again shortly" in full_page.text
    assert in_page.status_code == 503
    assert in_page.headers["hx-retarget"] == "#flash"
    assert 'role="alert"' in in_page.text
    assert "Server busy" in in_page.text
    assert snapshot(database_url) == before


def test_the_operator_is_warned_at_the_first_refusal_not_at_each(
    busy_client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Under a load the server cannot keep up with they come by the hundred."""
    fresh = FloodWarning(db_module.log, db_module.too_busy.message)
    monkeypatch.setattr(db_module, "too_busy", fresh)
    caplog.set_level(logging.INFO, logger=db_module.__name__)
    member = make_actor(_db(busy_client), Role.MEMBER)
    with every_slot_held(busy_client, write=True):
        for name in ("One", "Two", "Three"):
            body = {"name": name, "problem": "p"}
            response = busy_client.post("/api/v1/projects", json=body, headers=member.headers)
            assert response.status_code == 503

    records = [r for r in caplog.records if r.name == db_module.__name__]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the next two within the minute wait for a later warning
    assert "1 waiting to write" in warnings[0]
    assert sum(r.levelno == logging.INFO for r in records) == 3  # each one at INFO
    assert fresh.since_warning == {"waiting to write": 2}
