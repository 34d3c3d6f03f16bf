"""Live meeting mode with two browsers, and what a viewer can and cannot do."""

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.models import Decision
from app.models.enums import Role
from tests.web.conftest import (
    LiveServer,
    NewContext,
    create_project,
    create_user,
    csrf_token,
    open_item,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.browser


def _record_in_meeting(page: Page, summary: str) -> None:
    form = page.locator("#meeting-form form")
    form.get_by_label("Summary").fill(summary)
    form.get_by_label("Rationale").fill("Agreed in the room.")
    form.get_by_role("button", name="Record decision").click()
    expect(form.get_by_role("status")).to_contain_text("Recorded revision")


def test_a_second_attendee_sees_decisions_and_votes_live(
    live_server: LiveServer, new_context: NewContext
) -> None:
    presenter_email = create_user(live_server, Role.ADMIN, "Paula")
    attendee_email = create_user(live_server, Role.MEMBER, "Omar")
    project_id = create_project(live_server, presenter_email)
    presenter = new_context().new_page()
    attendee = new_context(viewport={"width": 412, "height": 915}).new_page()  # a phone
    sign_in(presenter, live_server, presenter_email)
    sign_in(attendee, live_server, attendee_email)
    meeting_url = f"{live_server.url}/projects/{project_id}/meeting"

    presenter.goto(meeting_url)
    presenter.get_by_role("button", name="Start a meeting and present").click()
    expect(presenter.locator("#stage-title")).to_have_text("Who owns each piece of data")
    attendee.goto(meeting_url)
    attendee.get_by_role("button", name="Join the meeting").click()
    expect(attendee.locator("#attendee-list")).to_contain_text("Omar")
    expect(presenter.locator("#attendee-list")).to_contain_text("Omar")

    _record_in_meeting(presenter, "The ledger service owns balances <b>only</b>")
    expect(attendee.locator("#stage-decision")).to_contain_text(
        "The ledger service owns balances <b>only</b>"
    )
    presenter.locator(".votes").get_by_role("button", name="Agree", exact=True).click()
    expect(attendee.locator("#vote-tally")).to_contain_text("Agree: 1 (Paula)")
    attendee.locator(".votes").get_by_role("button", name="Disagree").click()
    expect(presenter.locator("#vote-tally")).to_contain_text("Disagree: 1 (Omar)")
    expect(attendee.locator(".votes").get_by_role("button", name="Disagree")).to_have_attribute(
        "aria-pressed", "true"
    )

    screenshot(presenter, "meeting-presenter.png")
    screenshot(attendee, "meeting-attendee-phone.png")

    presenter.get_by_role("button", name="Next item").click()
    expect(attendee.locator("#stage-title")).to_have_text("A downstream drops off the network")
    expect(attendee.locator("#meeting-form")).to_contain_text("A downstream drops off the network")

    presenter.get_by_role("button", name="End the meeting and write the minutes").click()
    expect(presenter.locator("#minutes")).to_contain_text("Items covered")
    expect(attendee.locator("#minutes")).to_contain_text("Votes")
    expect(attendee.locator("#minutes")).to_contain_text("Omar: disagree")

    with live_server.db.transaction(write=False) as session:
        decision = session.scalars(select(Decision)).one()
        assert {a["name"] for a in decision.attendees} == {"Paula", "Omar"}
        assert decision.meeting_id is not None


def test_a_viewer_sees_no_write_controls_and_forged_writes_are_refused(
    live_server: LiveServer, new_context: NewContext
) -> None:
    admin_email = create_user(live_server, Role.ADMIN, "Ada")
    viewer_email = create_user(live_server, Role.VIEWER, "Vic")
    project_id = create_project(live_server, admin_email, name="Read-only review")
    page = new_context().new_page()
    sign_in(page, live_server, viewer_email)

    page.goto(f"{live_server.url}/projects/{project_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Read-only review")
    expect(page.locator("#gate-state")).to_contain_text("Closed")
    expect(page.get_by_role("button", name="Generate code")).to_have_count(0)
    expect(page.locator("#design-form")).to_have_count(0)
    panel = open_item(page.locator("article.item").first)
    expect(panel).to_contain_text("No decision yet")
    expect(page.locator("form.decision-form")).to_have_count(0)
    expect(page.get_by_role("link", name="New project")).to_have_count(0)

    item_id = (page.locator("article.item").first.get_attribute("id") or "").removeprefix("item-")
    forged = page.evaluate(
        """async ([itemId, token]) => {
            const response = await fetch(`/items/${itemId}/decision`, {
                method: "POST",
                headers: {"X-CSRF-Token": token},
                body: new URLSearchParams(
                    {status: "decided", summary: "forged", rationale: "forged", version: "0"}),
            });
            return {status: response.status, text: await response.text()};
        }""",
        [item_id, csrf_token(page)],
    )
    assert forged["status"] == 403
    assert "viewer" in forged["text"]

    page.goto(f"{live_server.url}/projects/{project_id}/meeting")
    expect(page.get_by_role("button", name="Start a meeting and present")).to_have_count(0)
    with live_server.db.transaction(write=False) as session:
        assert session.scalars(select(Decision)).all() == []
