"""The review page's forms in a Chromium with JavaScript off: every answer is a page."""

import re

import pytest
from playwright.sync_api import Page, expect

from app.models.enums import Role
from tests.web.conftest import (
    LiveServer,
    NewContext,
    create_project,
    create_user,
    sign_in,
)

pytestmark = pytest.mark.browser


def _signed_in_without_javascript(server: LiveServer, new_context: NewContext) -> tuple[Page, int]:
    email = create_user(server, Role.MEMBER, "Noa")
    project_id = create_project(server, email)
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, server, email)
    return page, project_id


def _is_a_whole_page(page: Page) -> None:
    expect(page).to_have_title(re.compile("designgate"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_saving_the_design_without_javascript_returns_to_the_review_page(
    live_server: LiveServer, new_context: NewContext
) -> None:
    page, project_id = _signed_in_without_javascript(live_server, new_context)
    page.goto(f"{live_server.url}/projects/{project_id}")
    page.get_by_label("Proposed architecture").fill("One writer per account.")
    page.get_by_role("button", name="Save design").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}#design$"))
    _is_a_whole_page(page)
    expect(page.get_by_label("Proposed architecture")).to_have_value("One writer per account.")

    page.locator("#design-problem").fill("   ")
    page.get_by_role("button", name="Save design").click()
    _is_a_whole_page(page)
    expect(page.locator("#design-problem-error")).to_have_text("Must not be blank.")
    expect(page.get_by_label("Proposed architecture")).to_have_value("One writer per account.")


def test_recording_a_decision_without_javascript_returns_to_the_item_page(
    live_server: LiveServer, new_context: NewContext
) -> None:
    page, project_id = _signed_in_without_javascript(live_server, new_context)
    page.goto(f"{live_server.url}/projects/{project_id}")
    page.locator("article.item details > summary").first.click()  # opens without a script
    page.get_by_role("link", name="Open this item on its own page").first.click()
    item_url = page.url
    page.get_by_label("Summary").fill("Retry with backoff")
    page.get_by_role("button", name="Record decision").click()
    _is_a_whole_page(page)
    expect(page.locator("[id$='-rationale-error']")).to_have_text("This field is required.")
    expect(page.get_by_label("Summary")).to_have_value("Retry with backoff")

    page.get_by_label("Rationale").fill("The downstream recovers within seconds.")
    page.get_by_role("button", name="Record decision").click()
    expect(page).to_have_url(item_url)
    _is_a_whole_page(page)
    expect(page.locator("[id$='-record']")).to_contain_text("Retry with backoff")


def test_adding_a_checklist_item_without_javascript_returns_to_the_review_page(
    live_server: LiveServer, new_context: NewContext
) -> None:
    page, project_id = _signed_in_without_javascript(live_server, new_context)
    page.goto(f"{live_server.url}/projects/{project_id}")
    page.get_by_text("Add a checklist item").click()
    page.locator("#add-item-title").fill("Replay after a restore")
    page.get_by_role("button", name="Add item").click()
    _is_a_whole_page(page)
    expect(page.locator("#add-item-question-error")).to_have_text("This field is required.")
    expect(page.locator("#add-item-title")).to_have_value("Replay after a restore")

    page.locator("#add-item-question").fill("How are messages sent twice told apart?")
    page.get_by_role("button", name="Add item").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}#item-\d+$"))
    _is_a_whole_page(page)
    expect(page.get_by_role("heading", name="Replay after a restore")).to_be_visible()
