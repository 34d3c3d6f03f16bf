"""The bound on closing a browser context (tests/web/chromium.py) ends a Chromium that does not
answer, and the tests after it get a new browser."""

import os
import signal

import pytest

from tests.web.chromium import Chromium, ChromiumGone, chromium_processes, close_context

pytestmark = pytest.mark.browser


def test_a_context_that_chromium_does_not_close_in_time_ends_chromium(
    chromium: Chromium,
) -> None:
    browser = chromium.browser()
    context = browser.new_context()
    context.new_page().set_content("<p>before</p>")
    stopped = chromium_processes()
    assert stopped, "no Chromium process was found under this test run"
    for pid in stopped:  # a Chromium that answers nothing, as the one that hung did
        os.kill(pid, signal.SIGSTOP)

    with pytest.warns(ChromiumGone, match="did not close a browser context in 2 s"):
        close_context(context, limit_s=2)

    assert not browser.is_connected()
    fresh = chromium.browser()
    assert fresh is not browser
    page = fresh.new_context().new_page()
    page.set_content("<p>after</p>")
    assert page.text_content("p") == "after"
    close_context(page.context)
