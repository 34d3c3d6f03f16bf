"""A page left open when its user signs out elsewhere: its live updates stop, it says so,
and what was typed there stays, ready to send once signed in again."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models import ChecklistItem, User
from app.models.enums import DecisionStatus, Role
from app.schemas.checklist import DecisionWrite
from app.services import decisions
from tests.web.conftest import (
    LiveServer,
    NewContext,
    create_project,
    create_user,
    open_item,
    open_review,
    sign_in,
)

pytestmark = pytest.mark.browser


def _sign_out_elsewhere(new_context: NewContext, server: LiveServer, email: str) -> None:
    """The same user signs out everywhere from another browser, which ends all of their
    sessions."""
    other = new_context().new_page()
    sign_in(other, server, email)
    other.get_by_role("button", name="Sign out everywhere").click()
    other.wait_for_url(re.compile(r"/login"))


def _record_as_admin(server: LiveServer, admin_email: str, item_id: int, summary: str) -> None:
    with server.db.transaction() as session:
        admin = session.scalar(select(User).where(User.email == admin_email))
        assert admin is not None
        data = DecisionWrite(status=DecisionStatus.DECIDED, summary=summary, rationale="Why")
        decisions.record_decision(session, item_id=item_id, data=data, actor=admin)


def _item_ids(server: LiveServer, project_id: int) -> list[int]:
    with server.db.transaction() as session:
        stmt = select(ChecklistItem.id).where(ChecklistItem.project_id == project_id)
        return list(session.scalars(stmt.order_by(ChecklistItem.position)))


def _first_item_id(server: LiveServer, project_id: int) -> int:
    return _item_ids(server, project_id)[0]


def _admin_member_and_project(server: LiveServer) -> tuple[str, str, int, int]:
    """An admin's project, a member, and the project's first item."""
    admin_email = create_user(server, Role.ADMIN, "Ann")
    email = create_user(server, Role.MEMBER, "Mia")
    project_id = create_project(server, admin_email)
    return admin_email, email, project_id, _first_item_id(server, project_id)


def test_a_page_open_across_a_sign_out_elsewhere_stops_getting_project_data(
    live_server: LiveServer, new_context: NewContext
) -> None:
    admin_email, email, project_id, item_id = _admin_member_and_project(live_server)
    mine, admins = new_context().new_page(), new_context().new_page()
    open_review(mine, live_server, email, project_id)
    open_review(admins, live_server, admin_email, project_id)
    form = open_item(mine.locator(f"#item-{item_id}")).locator("form.decision-form")
    form.get_by_label("Summary").fill("Typed before the sign-out")

    _sign_out_elsewhere(new_context, live_server, email)
    notice = mine.locator("#flash [role='alert']")
    expect(notice).to_contain_text("You are signed out")
    link = notice.get_by_role("link", name="sign in again in a new tab")
    expect(link).to_have_attribute("href", f"/login?next=/projects/{project_id}")
    expect(link).to_have_attribute("target", "_blank")

    _record_as_admin(live_server, admin_email, item_id, "Secret decision text")
    admins_row = admins.locator(f"#item-{item_id}-state")
    expect(admins_row).to_contain_text("Secret decision text")  # it went out live
    expect(mine.locator(f"#item-{item_id}-state")).not_to_contain_text("Secret decision text")
    expect(form.get_by_label("Summary")).to_have_value("Typed before the sign-out")


def test_a_page_open_in_one_browser_stays_live_when_the_user_signs_out_in_another(
    live_server: LiveServer, new_context: NewContext
) -> None:
    admin_email, email, project_id, item_id = _admin_member_and_project(live_server)
    mine = new_context().new_page()
    open_review(mine, live_server, email, project_id)
    other = new_context().new_page()
    sign_in(other, live_server, email)

    other.get_by_role("button", name="Sign out", exact=True).click()
    other.wait_for_url(re.compile(r"/login"))

    # The sign-out is announced to every stream of the user, and this page's check again.
    _record_as_admin(live_server, admin_email, item_id, "Decided after the other sign-out")
    row = mine.locator(f"#item-{item_id}-state")
    expect(row).to_contain_text("Decided after the other sign-out")
    expect(mine.locator("#flash [role='alert']")).to_have_count(0)
    form = open_item(mine.locator(f"#item-{item_id}")).locator("form.decision-form")
    form.get_by_label("Summary").fill("Still signed in here")
    form.get_by_role("button", name="Record decision").click()
    expect(form.get_by_role("status")).to_contain_text("Recorded revision 2")


def test_a_form_sent_after_the_session_ended_keeps_its_text_and_is_sent_after_signing_in(
    live_server: LiveServer, new_context: NewContext
) -> None:
    email = create_user(live_server, Role.MEMBER, "Mia")
    project_id = create_project(live_server, email)
    item_id = _first_item_id(live_server, project_id)
    context = new_context()
    mine = context.new_page()
    open_review(mine, live_server, email, project_id)
    form = open_item(mine.locator(f"#item-{item_id}")).locator("form.decision-form")
    form.get_by_label("Summary").fill("Typed before the sign-out")
    form.get_by_label("Rationale").fill("Kept across it")

    _sign_out_elsewhere(new_context, live_server, email)
    form.get_by_role("button", name="Record decision").click()
    notice = mine.locator("#flash [role='alert']")
    expect(notice).to_contain_text("so this was not sent")
    link = notice.get_by_role("link", name="sign in again in a new tab")
    expect(link).to_have_attribute("href", f"/login?next=/projects/{project_id}")
    assert mine.url.endswith(f"/projects/{project_id}")
    expect(form.get_by_label("Summary")).to_have_value("Typed before the sign-out")

    with context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.get_by_label("Email").fill(email)
    tab.get_by_label("Password").fill("correct horse battery")
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(re.compile(rf"/projects/{project_id}$"))
    mine.bring_to_front()
    mine.evaluate("window.dispatchEvent(new Event('focus'))")
    expect(mine.locator("#flash [role='status']")).to_contain_text("signed in again")
    form.get_by_role("button", name="Record decision").click()
    expect(form.get_by_role("status")).to_contain_text("Recorded revision 1")


def test_live_updates_come_back_once_signed_in_again_in_another_tab(
    live_server: LiveServer, new_context: NewContext
) -> None:
    admin_email, email, project_id, item_id = _admin_member_and_project(live_server)
    context = new_context()
    mine = context.new_page()
    open_review(mine, live_server, email, project_id)
    row = mine.locator(f"#item-{item_id}-state")
    _sign_out_elsewhere(new_context, live_server, email)
    expect(mine.locator("#flash [role='alert']")).to_contain_text("You are signed out")
    _record_as_admin(live_server, admin_email, item_id, "Decided while signed out")

    tab = context.new_page()
    open_review(tab, live_server, email, project_id)
    mine.bring_to_front()
    mine.evaluate("window.dispatchEvent(new Event('focus'))")
    expect(mine.locator("#flash [role='status']")).to_contain_text("live updates are back")
    expect(row).to_contain_text("Decided while signed out")  # the parts missed meanwhile

    later = _item_ids(live_server, project_id)[1]
    _record_as_admin(live_server, admin_email, later, "Decided once signed in again")
    expect(mine.locator(f"#item-{later}-state")).to_contain_text("Decided once signed in again")
