"""The hostile pages in real Chromium: no payload runs, the policy never has to step in,
and no injected htmx attribute fires a request (the session survives every page)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.hardening import xss
from tests.hardening.web_helpers import COOKIE, sign_in
from tests.llm_server import ScriptedLLM
from tests.web.conftest import LiveServer, NewContext

# Recorded before any of the page's own script runs.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (event) => window.__violations.push(event.violatedDirective + ' ' + event.blockedURI));
"""


@pytest.mark.browser
def test_the_hostile_pages_run_nothing_in_a_browser(
    live_server: LiveServer,
    new_context: NewContext,
    llm: ScriptedLLM,
) -> None:
    with live_server.db.transaction() as session:
        actor = xss.hostile_admin(session)
    with httpx.Client(base_url=live_server.url, timeout=30) as api:
        world = xss.build_world(api, llm, actor)
        xss.wait_until_written(api, world)
    # The hostile email is no valid address for the browser's form; sign in without it.
    signer = TestClient(live_server.app, base_url=live_server.url)
    sign_in(signer, actor.email)
    context = new_context()
    context.add_cookies([{"name": COOKIE, "value": signer.cookies[COOKIE], "url": live_server.url}])
    context.add_init_script(WATCH)
    page = context.new_page()
    paths = [
        f"/projects/{world.project_id}",
        f"/threads/{world.thread_id}",
        f"/generations/{world.generation_id}",
        "/",
    ]
    for path in paths:
        page.goto(live_server.url + path)
        page.wait_for_function("window.htmx !== undefined")
        page.wait_for_timeout(300)  # let deferred handlers and hx-trigger="load" have their go
        assert page.evaluate("window.__xss") is None, path
        assert page.evaluate("window.__violations") == [], path
        assert "window.__xss" in page.content() or path == "/", path
    page.goto(live_server.url + "/")
    assert page.url.rstrip("/") == live_server.url, "an injected request signed the user out"
    # The report is a standalone file with its own policy: styled, and still nothing runs.
    page.goto(f"{live_server.url}/projects/{world.project_id}/exports/report.html")
    page.wait_for_timeout(300)
    assert "window.__xss" in page.content()
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__violations") == []
    header = page.locator("th").first
    assert header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(238, 238, 238)"
