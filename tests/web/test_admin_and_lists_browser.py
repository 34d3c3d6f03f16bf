"""In Chromium: the admin's users page after a refused role change, and long unbroken names
on the pages that list them."""

from __future__ import annotations

from playwright.sync_api import expect

from app.models.enums import Role
from tests.web.conftest import LiveServer, NewContext, create_user, sign_in


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
