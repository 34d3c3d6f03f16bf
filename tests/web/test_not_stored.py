"""What depends on the signed-in user is never kept by a cache; static files may be."""

import re

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from app.models.enums import Role
from tests.conftest import Actor
from tests.web.conftest import LiveServer, NewContext, create_project, create_user, sign_in
from tests.web.test_pages import HTMX
from tests.web.test_pages import sign_in as sign_in_client


def test_pages_fragments_and_api_answers_are_not_stored_but_static_files_may_be(
    client: TestClient, member: Actor
) -> None:
    sign_in_client(client, member.email)
    answers = [
        client.get("/"),
        client.get("/projects/new"),
        client.get("/", headers=HTMX),
        client.get("/login", follow_redirects=False),
        client.get("/api/v1/projects", headers=member.headers),
    ]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
    assert "no-store" not in client.get("/static/app.js").headers.get("cache-control", "")


@pytest.mark.browser
def test_back_after_signing_out_does_not_show_the_last_users_projects(
    live_server: LiveServer, new_context: NewContext
) -> None:
    email = create_user(live_server, Role.MEMBER, "Mia")
    create_project(live_server, email, name="Mia's private ledger")
    page = new_context().new_page()
    sign_in(page, live_server, email)
    expect(page.get_by_text("Mia's private ledger")).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r"/login"))

    page.go_back()
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.get_by_text("Mia's private ledger")).to_have_count(0)
