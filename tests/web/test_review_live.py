"""Two people on one review page: rows update live, and an opened form that went stale
gets a conflict that keeps what was typed."""

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


def test_a_decision_updates_the_other_page_live_and_its_stale_form_gets_a_conflict(
    live_server: LiveServer, new_context: NewContext
) -> None:
    first_email = create_user(live_server, Role.MEMBER, "Mia")
    second_email = create_user(live_server, Role.MEMBER, "Noor")
    project_id = create_project(live_server, first_email)
    mine, theirs = new_context().new_page(), new_context().new_page()
    sign_in(mine, live_server, first_email)
    sign_in(theirs, live_server, second_email)
    for page in (mine, theirs):
        page.goto(f"{live_server.url}/projects/{project_id}")
    their_form = open_item(theirs.locator("article.item").first).locator("form.decision-form")
    their_form.get_by_label("Summary").fill("Noor's summary, typed first")
    their_form.get_by_label("Rationale").fill("Noor's reasons")

    my_item = mine.locator("article.item").first
    my_form = open_item(my_item).locator("form.decision-form")
    my_form.get_by_label("Summary").fill("Mia decided first")
    my_form.get_by_label("Rationale").fill("Mia's reasons")
    my_form.get_by_role("button", name="Record decision").click()
    expect(my_form.get_by_role("status")).to_contain_text("Recorded revision 1")
    expect(my_item.locator("[id$='-record']")).to_contain_text("Mia's reasons")

    their_row = theirs.locator("article.item").first.locator("[id$='-state']")
    expect(their_row).to_contain_text("Mia decided first")  # over the live stream
    expect(their_row.locator("[data-state='decided']")).to_be_visible()
    their_form.get_by_role("button", name="Record decision").click()
    conflict = their_form.get_by_role("alert")
    expect(conflict).to_contain_text("Mia decided first")
    expect(their_form.get_by_label("Summary")).to_have_value("Noor's summary, typed first")
    their_form.get_by_role("button", name="Record decision").click()
    expect(their_form.get_by_role("status")).to_contain_text("Recorded revision 2")
    expect(mine.locator("article.item").first.locator("[id$='-state']")).to_contain_text(
        "Noor's summary, typed first"
    )
