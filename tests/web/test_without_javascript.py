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
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


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


def _record_in_the_meeting(page: Page, summary: str) -> None:
    form = page.locator("#meeting-form form")
    form.get_by_label("Summary").fill(summary)
    form.get_by_label("Rationale").fill("Agreed in the room.")
    form.get_by_role("button", name="Record decision").click()
    expect(page.locator("#stage-decision")).to_contain_text(summary)


def _meeting_started_with_a_decision(page: Page, server: LiveServer, project_id: int) -> str:
    """Start the project's meeting as its presenter and record a decision there; its URL."""
    meeting_url = f"{server.url}/projects/{project_id}/meeting"
    page.goto(meeting_url)
    page.get_by_role("button", name="Start a meeting and present").click()
    _record_in_the_meeting(page, "The ledger service owns balances")
    return meeting_url


def test_voting_and_presenting_items_in_a_meeting_without_javascript_reload_the_meeting_page(
    live_server: LiveServer, new_context: NewContext
) -> None:
    page, project_id = _signed_in_without_javascript(live_server, new_context)
    meeting_url = _meeting_started_with_a_decision(page, live_server, project_id)

    page.locator(".votes").get_by_role("button", name="Agree", exact=True).click()
    expect(page).to_have_url(meeting_url)
    _is_a_whole_page(page)
    expect(page.locator("#vote-tally")).to_contain_text("Agree: 1 (Noa)")
    agree = page.locator(".votes").get_by_role("button", name="Agree", exact=True)
    expect(agree).to_have_attribute("aria-pressed", "true")

    page.get_by_role("button", name="Next item").click()
    expect(page).to_have_url(meeting_url)
    _is_a_whole_page(page)
    expect(page.locator("#stage-title")).to_have_text("A downstream drops off the network")
    page.get_by_role("button", name="Present Traffic spikes").click()  # from the checklist
    expect(page).to_have_url(meeting_url)
    expect(page.locator("#stage-title")).to_have_text("Traffic spikes")
    page.get_by_role("button", name="Previous item").click()
    expect(page.locator("#stage-title")).to_have_text("A downstream drops off the network")


def test_joining_and_voting_in_a_meeting_without_javascript_show_on_the_reloaded_page(
    live_server: LiveServer, new_context: NewContext
) -> None:
    presenter, project_id = _signed_in_without_javascript(live_server, new_context)
    meeting_url = _meeting_started_with_a_decision(presenter, live_server, project_id)
    attendee = new_context(java_script_enabled=False).new_page()
    sign_in(attendee, live_server, create_user(live_server, Role.MEMBER, "Omar"))

    attendee.goto(meeting_url)
    attendee.get_by_role("button", name="Join the meeting").click()
    expect(attendee).to_have_url(meeting_url)
    _is_a_whole_page(attendee)
    expect(attendee.locator("#attendee-list li", has_text="Omar")).to_contain_text("here")
    attendee.locator(".votes").get_by_role("button", name="Disagree").click()
    expect(attendee).to_have_url(meeting_url)
    _is_a_whole_page(attendee)
    expect(attendee.locator("#vote-tally")).to_contain_text("Disagree: 1 (Omar)")

    presenter.reload()
    expect(presenter.locator("#vote-tally")).to_contain_text("Disagree: 1 (Omar)")
    expect(presenter.locator("#attendee-list")).to_contain_text("Omar")
