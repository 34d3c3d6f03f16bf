"""Debates in a real Chromium: replies stream in, model markup stays inert, pushback is judged."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from app.main import create_app
from app.models import Message, User
from app.models.enums import Role
from app.schemas.project import ProjectCreate
from app.services import projects, users
from tests.conftest import make_settings
from tests.llm_server import Reply, ScriptedLLM
from tests.web.conftest import (
    ARTIFACTS,
    LiveServer,
    NewContext,
    create_user,
    csrf_token,
    open_item,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.browser

MODEL = "openai/scripted-model"
OTHER = "openai/second-model"
JUDGE = "openai/judge-model"
PROBLEM = "Card payments must be captured exactly once, even when the acquirer times out."
ARCHITECTURE = "A capture worker polls the payments table and calls the acquirer API."
FIRST_CALL_S = 60_000  # the first model call of the test run pays for importing litellm
PROPOSAL = (
    "## Design A: outbox and idempotency keys\n\n"
    + "".join(f"Step {n}: write the intent, then capture with key {n}. " for n in range(12))
    + "\n\n## Design B: a ledger of attempts\n\n- **append-only** attempts\n- a reconciler\n"
)
HOSTILE = (
    "Design A <script>window.pwned=1</script>\n\n"
    '<img src=x onerror="window.pwned=2">\n\n'
    '<div hx-get="/logout" hx-trigger="load">htmx bait</div>\n\n'
    "[click me](javascript:window.pwned=3)"
)


@pytest.fixture
def debate_server(database_url: str, llm_server: ScriptedLLM) -> Iterator[LiveServer]:
    """The app with two debating models and a separate judge, all on the scripted server."""
    settings = make_settings(
        database_url,
        model=MODEL,
        models=[MODEL, OTHER],
        judge_model=JUDGE,
        llm_api_base=llm_server.api_base,
        llm_api_key="test-key",
        llm_timeout_s=5.0,
        llm_warmup=False,
        llm_backoff_base_s=0.0,
        llm_backoff_max_s=0.0,
    )
    server = LiveServer(create_app(settings)).start()
    yield server
    server.stop()


def _project(server: LiveServer, email: str, *, blind_first: bool = True) -> int:
    with server.db.transaction() as session:
        owner = session.scalar(select(User).where(User.email == email))
        assert owner is not None
        data = ProjectCreate(
            name="Card capture",
            problem=PROBLEM,
            architecture=ARCHITECTURE,
            blind_first=blind_first,
        )
        return projects.create_project(session, data=data, actor=owner).id


def _member_on_review_page(server: LiveServer, page: Page, *, blind_first: bool = True) -> int:
    email = create_user(server, Role.MEMBER, "Bea")
    project_id = _project(server, email, blind_first=blind_first)
    sign_in(page, server, email)
    page.goto(f"{server.url}/projects/{project_id}")
    return project_id


def _start_from_review_page(page: Page, *models: str) -> None:
    form = page.locator("#thread-form")
    form.get_by_label("Blind round").check()
    for model in (MODEL, OTHER):
        box = form.get_by_label(model, exact=True)
        box.set_checked(model in models)
    form.get_by_role("button", name="Start the thread").click()
    expect(page).to_have_url(re.compile(r"/threads/\d+$"))


def test_a_blind_round_streams_in_side_by_side_and_shows_what_the_model_saw(
    debate_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    page = new_context(viewport={"width": 1400, "height": 1000}).new_page()
    _member_on_review_page(debate_server, page)
    expect(page.locator("#debates")).to_contain_text("Design withheld from the model")
    screenshot(page, "review-debate-form.png", selector="#debates")
    expect(open_item(page.locator("article.item").first).locator(".ask-model")).to_be_visible()
    screenshot(page, "review-item-links.png", selector="article.item >> nth=0")
    llm.script_for(MODEL, Reply(text=PROPOSAL, chunk_size=16, delay_s=0.08))
    llm.script_for(OTHER, Reply(text="Design C: **a saga** with compensations.", delay_s=0.05))
    _start_from_review_page(page, MODEL, OTHER)

    replies = page.locator("article.reply")
    expect(replies).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.streaming')]"
        ".some(text => text.textContent.includes('Step'))",
        timeout=FIRST_CALL_S,
    )  # part of the reply is on screen while the model is still writing
    expect(page.locator("[data-status='complete']")).to_have_count(2, timeout=30_000)
    first, second = replies.nth(0), replies.nth(1)
    expect(first.get_by_role("heading", name="Design B: a ledger of attempts")).to_be_visible()
    expect(first.locator("strong", has_text="append-only")).to_be_visible()
    expect(second).to_contain_text("a saga with compensations")
    assert _side_by_side(page)

    first.get_by_text("What the model saw").click()
    prompt = first.locator("pre.prompt-text")
    expect(prompt.nth(1)).to_be_visible()
    expect(prompt.nth(1)).to_contain_text(PROBLEM)
    stored = _stored_prompt(debate_server, first)
    assert prompt.all_text_contents() == [part["content"] for part in stored]
    assert not [text for text in prompt.all_text_contents() if ARCHITECTURE in text]
    screenshot(page, "thread-page.png")
    screenshot(page, "thread-what-the-model-saw.png", selector="#turn-1")

    page.get_by_role("link", name=re.compile("Back to the review")).click()
    expect(page.locator("#thread-list")).to_contain_text("Blind round")
    expect(page.locator("#debates")).to_contain_text("Design shown to the model")
    screenshot(page, "review-debates.png", selector="#debates")


def _stored_prompt(server: LiveServer, reply: Locator) -> list[dict[str, Any]]:
    """The prompt stored with the reply this article shows."""
    message_id = int((reply.get_attribute("id") or "").removeprefix("msg-"))
    with server.db.transaction(write=False) as session:
        message = session.get(Message, message_id)
        assert message is not None
        return list(message.prompt)


def _side_by_side(page: Page) -> bool:
    boxes = [page.locator("article.reply").nth(n).bounding_box() for n in range(2)]
    first, second = boxes
    assert first is not None
    assert second is not None
    return abs(first["y"] - second["y"]) < 2 and second["x"] > first["x"] + first["width"] / 2


def test_model_markup_is_inert_while_streaming_and_after(
    debate_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    page = new_context().new_page()
    _member_on_review_page(debate_server, page)
    llm.script_for(MODEL, Reply(text=HOSTILE, chunk_size=6, delay_s=0.06))
    _start_from_review_page(page, MODEL)

    text = page.locator(".streaming")
    expect(text).to_contain_text("<script>window.pwned=1</script>", timeout=FIRST_CALL_S)
    _assert_inert(page)
    reply = page.locator("article.reply")
    expect(reply.locator("[data-status='complete']")).to_be_visible(timeout=30_000)
    expect(reply).to_contain_text("<script>window.pwned=1</script>")
    expect(reply).to_contain_text("htmx bait")
    _assert_inert(page)
    page.reload()
    expect(reply).to_contain_text('<img src=x onerror="window.pwned=2">')
    _assert_inert(page)


def _assert_inert(page: Page) -> None:
    assert page.evaluate("typeof window.pwned") == "undefined"
    turns = page.locator("#thread-turns")
    for selector in ("script", "img", "iframe", "[hx-get]", "[hx-trigger]", "[onerror]"):
        expect(turns.locator(selector)).to_have_count(0)
    hrefs = turns.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not [href for href in hrefs if href and href.startswith("javascript")]


def test_a_flip_under_pushback_shows_the_capitulated_badge_live(
    debate_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    page = new_context().new_page()
    project_id = _member_on_review_page(debate_server, page, blind_first=False)
    llm.script_for(MODEL, "Keep the idempotency keys: the acquirer retries captures.")
    llm.script_for(MODEL, Reply(text="You are right, drop the keys entirely.", delay_s=0.05))
    verdict = {"position_changed": True, "new_argument": False, "explanation": "Nothing new."}
    llm.script_for(JUDGE, json.dumps(verdict))

    page.goto(f"{debate_server.url}/projects/{project_id}/threads/new?mode=open")
    form = page.locator("#thread-form")
    form.get_by_label(OTHER, exact=True).uncheck()
    form.get_by_label("Opening message").fill("Do we need idempotency keys?")
    form.get_by_role("button", name="Start the thread").click()
    expect(page.locator("[data-status='complete']")).to_have_count(1, timeout=FIRST_CALL_S)

    page.get_by_label("Message", exact=True).fill("Drop them. Just do it my way.")
    page.get_by_label("Push back on the model's position").check()
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#message-sent")).to_be_visible()
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    last = page.locator("article.reply").last
    expect(last).to_contain_text("drop the keys entirely", timeout=30_000)
    badge = last.locator("[data-flag='capitulated']")
    expect(badge).to_be_visible(timeout=30_000)
    expect(badge).to_have_text("capitulated")
    expect(last).to_contain_text("without a new argument: a capitulation")
    expect(page.locator("article.team-message [data-flag='pushback']")).to_have_count(1)
    expect(page.locator(".model-stats")).to_contain_text("turn 2")
    screenshot(page, "thread-capitulated.png", selector="#thread-turns")
    page.screenshot(path=str(ARTIFACTS / "thread-page-full.png"), full_page=True)


def test_a_reconnecting_browser_sees_the_text_so_far_and_the_rest(
    debate_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    page = new_context().new_page()
    _member_on_review_page(debate_server, page)
    words = " ".join(f"word{n:02d}" for n in range(60))
    llm.script_for(MODEL, Reply(text=words, chunk_size=14, delay_s=0.08))
    _start_from_review_page(page, MODEL)
    text = page.locator(".streaming")
    expect(text).to_contain_text("word05", timeout=FIRST_CALL_S)
    page.reload()  # a new page load and a new event stream, mid-reply
    expect(page.locator("[data-status='complete']")).to_be_visible(timeout=30_000)
    expect(page.locator("article.reply .markdown")).to_have_text(words)


def test_a_viewer_reads_the_thread_but_gets_no_controls_and_a_forged_post_is_refused(
    debate_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    writer = new_context().new_page()
    _member_on_review_page(debate_server, writer)
    llm.script_for(MODEL, "A reply for everyone to read.")
    _start_from_review_page(writer, MODEL)
    thread_url = writer.url

    viewer = new_context().new_page()
    sign_in(viewer, debate_server, create_user(debate_server, Role.VIEWER, "Val"))
    viewer.goto(thread_url)
    expect(viewer.locator("article.reply")).to_contain_text("A reply for everyone", timeout=30_000)
    expect(viewer.locator("#message-form")).to_have_count(0)
    expect(viewer.get_by_role("button", name="Send")).to_have_count(0)
    thread_path = thread_url.removeprefix(debate_server.url)
    forged = viewer.evaluate(
        """async ([path, token]) => {
            const response = await fetch(path + "/messages", {
                method: "POST",
                headers: {"X-CSRF-Token": token},
                body: new URLSearchParams({content: "forged"}),
            });
            return response.status;
        }""",
        [thread_path, csrf_token(viewer)],
    )
    assert forged == 403


def test_meeting_attendees_see_model_replies_arrive_live(
    debate_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    presenter_email = create_user(debate_server, Role.ADMIN, "Pia")
    attendee_email = create_user(debate_server, Role.MEMBER, "Ole")
    project_id = _project(debate_server, presenter_email)
    presenter_context = new_context()
    presenter = presenter_context.new_page()
    attendee = new_context().new_page()
    sign_in(presenter, debate_server, presenter_email)
    sign_in(attendee, debate_server, attendee_email)
    meeting_url = f"{debate_server.url}/projects/{project_id}/meeting"
    presenter.goto(meeting_url)
    presenter.get_by_role("button", name="Start a meeting and present").click()
    expect(presenter.locator("#stage-title")).to_have_text("Who owns each piece of data")
    attendee.goto(meeting_url)
    attendee.get_by_role("button", name="Join the meeting").click()
    expect(attendee.locator("#meeting-replies")).to_contain_text("No model replies yet")

    llm.script_for(MODEL, Reply(text="Owner of balances: the ledger service. " * 8, delay_s=0.05))
    with presenter_context.expect_page() as opened:
        presenter.get_by_role("link", name="walk this item's failure modes").click()
    walk = opened.value
    form = walk.locator("#thread-form")
    expect(form.get_by_role("radio", name=re.compile("^Failure walk"))).to_be_checked()
    form.get_by_label(OTHER, exact=True).uncheck()
    form.get_by_role("button", name="Start the thread").click()

    replies = attendee.locator("#meeting-replies")
    expect(replies).to_contain_text("Failure walk: Who owns each piece of data")
    expect(replies.locator("[data-status='complete']")).to_be_visible(timeout=FIRST_CALL_S)
    expect(replies).to_contain_text("Owner of balances: the ledger service.")
    expect(presenter.locator("#meeting-replies")).to_contain_text("the ledger service")
    screenshot(attendee, "meeting-model-replies.png", selector="#meeting-replies")
    replies.get_by_role("link", name="Failure walk: Who owns each piece of data").click()
    expect(attendee.get_by_role("heading", level=1)).to_have_text(
        "Failure walk: Who owns each piece of data"
    )


def test_a_thread_page_open_when_its_user_is_made_a_viewer_says_so(
    debate_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    writer = new_context().new_page()
    _member_on_review_page(debate_server, writer)
    llm.script_for(MODEL, "A reply before the role changed.")
    _start_from_review_page(writer, MODEL)
    expect(writer.locator("article.reply")).to_contain_text("before the role", timeout=30_000)
    notice = writer.locator("#role-notice")
    expect(notice).to_be_empty()

    with debate_server.db.transaction() as session:
        member = session.scalar(select(User).where(User.role == Role.MEMBER))
        assert member is not None
        admin = users.create_user(
            session, email="ada@example.com", name="Ada", role=Role.ADMIN, password="a long one"
        )
        users.change_role(session, user_id=member.id, role=Role.VIEWER, actor=admin)

    expect(notice).to_contain_text("Your role is now viewer")  # over the live stream
    notice.get_by_role("link", name="Reload the page").click()
    expect(writer.locator("#message-form")).to_have_count(0)
