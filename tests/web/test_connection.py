"""A lost connection shows a banner, keeps what was typed, and live updates come back."""

import pytest
from playwright.sync_api import expect

from app.models.enums import Role
from tests.web.conftest import (
    LiveServer,
    NewContext,
    create_project,
    create_user,
    open_item,
    sign_in,
)

pytestmark = pytest.mark.browser


def test_a_lost_connection_shows_a_banner_and_recovers(
    live_server: LiveServer, new_context: NewContext
) -> None:
    email = create_user(live_server, Role.MEMBER, "Mia")
    project_id = create_project(live_server, email)
    page = new_context().new_page()
    sign_in(page, live_server, email)
    page.goto(f"{live_server.url}/projects/{project_id}")
    banner = page.locator("#connection-banner")
    form = open_item(page.locator("article.item").first).locator("form.decision-form")
    expect(banner).to_be_hidden()

    live_server.stop()
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Reconnecting")
    form.get_by_label("Summary").fill("Typed while the server was away")
    form.get_by_label("Rationale").fill("It must not be lost")
    form.get_by_role("button", name="Record decision").click()
    expect(banner).to_contain_text("cannot be reached")

    live_server.restart()
    expect(banner).to_be_hidden(timeout=20_000)
    expect(form.get_by_label("Summary")).to_have_value("Typed while the server was away")
    form.get_by_role("button", name="Record decision").click()
    expect(form.get_by_role("status")).to_contain_text("Recorded revision 1")
