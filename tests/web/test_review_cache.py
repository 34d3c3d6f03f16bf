"""A review page is rendered once per change and viewer, and never served after a change.

The pages are kept under the project's review revision (``app/web/page_cache.py``), the
pages without their debates sections under the count of the other changes; these tests load
a page, change what it shows in different ways, and load it again.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db import Database
from app.models import Message, Thread
from app.web.page_cache import RenderedPages
from tests import factories
from tests.conftest import Actor
from tests.hardening.web_helpers import token_in
from tests.perf.test_statement_counts import counted_statements
from tests.web.test_pages import sign_in


def test_a_decision_recorded_after_the_page_was_served_shows_on_the_next_load(
    client: TestClient, member: Actor
) -> None:
    project_id = factories.create_project(client, member)["id"]
    sign_in(client, member.email)
    first = client.get(f"/projects/{project_id}")
    assert first.status_code == 200
    assert client.get(f"/projects/{project_id}").text == first.text  # served again
    item = factories.checklist(client, member, project_id)[0]
    factories.decide(client, member, item, summary="Nack malformed messages to a DLQ")
    after = client.get(f"/projects/{project_id}")
    assert "Nack malformed messages to a DLQ" in after.text
    assert "Nack malformed messages to a DLQ" not in first.text


def test_a_change_made_outside_the_app_shows_on_the_next_load(
    client: TestClient, db: Database, member: Actor
) -> None:
    """Another process, the CLI or a hand-written UPDATE: the database counts it."""
    project_id = factories.create_project(client, member)["id"]
    item = factories.checklist(client, member, project_id)[0]
    sign_in(client, member.email)
    assert client.get(f"/projects/{project_id}").status_code == 200
    with db.transaction() as session:
        session.execute(
            text("UPDATE checklist_items SET title = 'Poison messages' WHERE id = :id"),
            {"id": item["id"]},
        )
    assert "Poison messages" in client.get(f"/projects/{project_id}").text


def test_each_viewer_gets_a_page_of_their_own(
    app: FastAPI, client: TestClient, member: Actor, viewer: Actor
) -> None:
    """The page carries its viewer's name, role and form token."""
    project_id = factories.create_project(client, member)["id"]
    member_token = sign_in(client, member.email)
    with TestClient(app) as other:
        viewer_token = sign_in(other, viewer.email)
        for _ in range(2):  # the second load of each is served from what was kept
            as_member = client.get(f"/projects/{project_id}").text
            as_viewer = other.get(f"/projects/{project_id}").text
            assert token_in(as_member) == member_token
            assert token_in(as_viewer) == viewer_token
            assert "(member)" in as_member
            assert "(viewer)" not in as_member
            assert "(viewer)" in as_viewer
            assert "(member)" not in as_viewer


def test_a_signed_out_session_gets_no_kept_page(
    app: FastAPI, client: TestClient, member: Actor
) -> None:
    project_id = factories.create_project(client, member)["id"]
    token = sign_in(client, member.email)
    assert client.get(f"/projects/{project_id}").status_code == 200
    copied = dict(client.cookies)
    assert client.post("/logout", data={"csrf_token": token}).status_code in (200, 303)
    with TestClient(app, cookies=copied) as replayed:
        response = replayed.get(f"/projects/{project_id}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_a_project_that_does_not_exist_is_a_readable_404(client: TestClient, member: Actor) -> None:
    sign_in(client, member.email)
    response = client.get("/projects/987654")
    assert response.status_code == 404
    assert "Project 987654 does not exist" in response.text


def _add_thread_with_reply(db: Database, project_id: int, title: str) -> None:
    """As a posted question and its reply would, without a model."""
    with db.transaction() as session:
        thread = Thread(project_id=project_id, mode="open", models=["m"], title=title)
        session.add(thread)
        session.flush()
        session.add(Message(thread_id=thread.id, turn=1, role="user", status="complete"))
        session.add(Message(thread_id=thread.id, turn=1, role="assistant", status="complete"))


def test_a_debate_change_renders_the_debates_section_into_the_kept_rest_of_the_page(
    app: FastAPI, client: TestClient, db: Database, member: Actor
) -> None:
    """A thread or a reply changes only the debates section: the checklist is not read
    again, and the page is the one a rendering from scratch gives."""
    project_id = factories.create_project(client, member)["id"]
    factories.decide(client, member, factories.checklist(client, member, project_id)[0])
    sign_in(client, member.email)
    first = client.get(f"/projects/{project_id}").text
    assert "No debates yet" in first
    assert '<details id="start-thread" open>' in first
    _add_thread_with_reply(db, project_id, "Poison messages and the queue")
    with counted_statements(db) as statements:
        after = client.get(f"/projects/{project_id}").text
    assert not [s for s in statements if "decisions" in s], statements
    assert "Poison messages and the queue" in after
    assert "No debates yet" not in after
    assert '<details id="start-thread">' in after
    app.state.review_pages = RenderedPages()
    app.state.review_page_rests = RenderedPages()
    assert client.get(f"/projects/{project_id}").text == after


def test_a_change_outside_the_debates_renders_the_rest_of_the_page_again(
    client: TestClient, db: Database, member: Actor
) -> None:
    project_id = factories.create_project(client, member)["id"]
    item = factories.checklist(client, member, project_id)[0]
    _add_thread_with_reply(db, project_id, "Retries")
    sign_in(client, member.email)
    assert "Retries" in client.get(f"/projects/{project_id}").text
    factories.decide(client, member, item, summary="Exponential backoff with jitter")
    _add_thread_with_reply(db, project_id, "Load spikes")
    after = client.get(f"/projects/{project_id}").text
    assert "Exponential backoff with jitter" in after
    assert "Load spikes" in after
