"""A project is created once, however quickly its button is clicked."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.models import Project
from app.models.enums import Role
from tests.web.conftest import LiveServer, NewContext, create_user, sign_in

pytestmark = pytest.mark.browser


def test_double_clicking_create_project_creates_one_project(
    live_server: LiveServer, new_context: NewContext
) -> None:
    page = new_context().new_page()
    sign_in(page, live_server, create_user(live_server, Role.MEMBER, "Mia"))
    page.goto(f"{live_server.url}/projects/new")
    page.get_by_label("Name").fill("Clicked twice")
    page.get_by_label("Problem").fill("Money moves between accounts exactly once.")

    page.get_by_role("button", name="Create project").dblclick()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("link", name="Clicked twice")).to_have_count(1)
    with live_server.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 1
