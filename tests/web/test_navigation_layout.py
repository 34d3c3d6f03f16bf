"""In Chromium: the navigation of a signed-in admin, with a name of a usual length, sits on
the brand's one row on a laptop's screen and wraps below it, without sideways scrolling, on a
tablet's and a phone's."""

from playwright.sync_api import Locator, Page

from app.models.enums import Role
from tests.web.conftest import LiveServer, NewContext, create_user, overflow, sign_in

NAME = "Alexandra-Montgomery-Smith"


def _middle_y(element: Locator) -> float:
    box = element.bounding_box()
    assert box is not None
    return box["y"] + box["height"] / 2


def _rows_apart(page: Page) -> float:
    """How far the last control of the navigation sits below the brand, in brand heights."""
    nav = page.get_by_role("navigation", name="Main")
    brand = nav.get_by_role("link", name="designgate")
    last = nav.get_by_role("button", name="Sign out everywhere")
    box = brand.bounding_box()
    assert box is not None
    return (_middle_y(last) - _middle_y(brand)) / box["height"]


def test_the_navigation_is_one_row_on_a_laptop_and_wraps_on_narrower_screens(
    live_server: LiveServer, new_context: NewContext
) -> None:
    email = create_user(live_server, Role.ADMIN, NAME)
    rows_apart = {}
    for width in (1280, 1024, 390):
        page = new_context(viewport={"width": width, "height": 800}).new_page()
        sign_in(page, live_server, email)
        assert overflow(page) == 0, width
        rows_apart[width] = _rows_apart(page)
    assert abs(rows_apart[1280]) < 0.5, rows_apart
    # Narrower, the controls go below the brand, not above it or on top of it.
    assert rows_apart[1024] > 1, rows_apart
    assert rows_apart[390] > 1, rows_apart
