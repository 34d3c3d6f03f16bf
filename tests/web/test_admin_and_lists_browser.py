"""In Chromium: the admin's users page after a refused role change, and long unbroken names
on the pages that list them."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from app.models import User
from app.models.enums import Role
from app.services import users
from tests.web.conftest import (
    LiveServer,
    NewContext,
    create_project,
    create_user,
    overflow,
    sign_in,
)

LONG_NAME = "N" * 200  # a project name at its limit, with nowhere to break
NARROW = {"width": 420, "height": 800}
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def test_a_refused_demotion_shows_the_real_role_and_only_its_own_message(
    live_server: LiveServer, new_context: NewContext
) -> None:
    admin_email = create_user(live_server, Role.ADMIN, "Ada")
    member_email = create_user(live_server, Role.MEMBER, "Max")
    page = new_context().new_page()
    sign_in(page, live_server, admin_email)
    page.goto(f"{live_server.url}/admin/users")

    member_row = page.get_by_role("row").filter(has_text=member_email)
    member_row.get_by_label(f"Role of {member_email}").select_option("viewer")
    member_row.get_by_role("button", name="Change role").click()
    expect(page.get_by_role("status")).to_have_text(f"{member_email} is now viewer.")

    admin_row = page.get_by_role("row").filter(has_text=admin_email)
    admin_row.get_by_label(f"Role of {admin_email}").select_option("member")
    admin_row.get_by_role("button", name="Change role").click()

    expect(page.locator("#admin-users").get_by_role("alert")).to_contain_text("last admin")
    expect(page.get_by_text(f"{member_email} is now viewer.")).to_have_count(0)
    expect(page.get_by_label(f"Role of {admin_email}")).to_have_value("admin")
    expect(page.get_by_label(f"Role of {member_email}")).to_have_value("viewer")
    expect(page.locator("#flash")).to_be_empty()


def _fits_the_window(page: Page) -> bool:
    return overflow(page) == 0


def test_a_long_unbroken_project_name_wraps_in_the_list_and_the_heading(
    live_server: LiveServer, new_context: NewContext
) -> None:
    email = create_user(live_server, Role.ADMIN, "Ada")
    project_id = create_project(live_server, email, name=LONG_NAME)
    for viewport in (WIDE, NARROW):
        page = new_context(viewport=viewport).new_page()
        sign_in(page, live_server, email)
        expect(page.get_by_role("link", name=LONG_NAME)).to_be_visible()
        assert _fits_the_window(page), ("project list", viewport)
        expect(page.get_by_text("0/", exact=False).first).to_be_visible()

        page.goto(f"{live_server.url}/projects/{project_id}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(LONG_NAME)
        assert _fits_the_window(page), ("review page", viewport)


def test_a_long_unbroken_user_name_and_email_wrap_on_the_users_page(
    live_server: LiveServer, new_context: NewContext
) -> None:
    email = create_user(live_server, Role.ADMIN, "A" * 200)
    page = new_context(viewport=NARROW).new_page()
    sign_in(page, live_server, email)
    page.goto(f"{live_server.url}/admin/users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    assert _fits_the_window(page)


def _inside_the_window(page: Page, button: Locator) -> bool:
    """Whether the whole button is in view without scrolling sideways."""
    box = button.bounding_box()
    assert box is not None
    width: int = page.evaluate("document.documentElement.clientWidth")
    return box["x"] >= 0 and box["x"] + box["width"] <= width


def test_the_users_and_tokens_pages_show_every_column_on_a_phone(
    live_server: LiveServer, new_context: NewContext
) -> None:
    """The admin tables were wider than a phone: the users' Deactivate and the tokens' Revoke
    buttons were past the right edge, reached only by scrolling the table sideways."""
    admin_email = create_user(live_server, Role.ADMIN, "Ada")
    member_email = create_user(live_server, Role.MEMBER, "Max")
    with live_server.db.transaction() as session:
        member = session.scalar(select(User).where(User.email == member_email))
        assert member is not None
        users.create_token(session, user=member, label="laptop")
    page = new_context(viewport=PHONE).new_page()
    sign_in(page, live_server, admin_email)

    page.goto(f"{live_server.url}/admin/users")
    member_row = page.get_by_role("row").filter(has_text=member_email)
    expect(member_row).to_be_visible()
    for name in ("Change role", "Deactivate"):
        assert _inside_the_window(page, member_row.get_by_role("button", name=name)), name
    assert _fits_the_window(page)

    page.goto(f"{live_server.url}/admin/tokens")
    token_row = page.get_by_role("row").filter(has_text="laptop")
    assert _inside_the_window(page, token_row.get_by_role("button", name="Revoke"))
    assert _fits_the_window(page)
