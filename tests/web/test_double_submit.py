"""A form's button double-clicked sends the form once: the request in flight disables it."""

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, Route, expect
from sqlalchemy import func, select

from app.models import ChecklistItem, Generation, Thread, User
from app.models.enums import DecisionStatus, Role
from app.schemas.checklist import DecisionWrite
from app.services import decisions
from tests.llm_server import Reply, ScriptedLLM
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


def _review_page(server: LiveServer, new_context: NewContext) -> tuple[Page, int]:
    email = create_user(server, Role.MEMBER, "Mia")
    project_id = create_project(server, email)
    page = new_context().new_page()
    open_review(page, server, email, project_id)
    return page, project_id


def _count(server: LiveServer, model: type[Thread] | type[Generation]) -> int:
    with server.db.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_double_clicking_start_the_thread_starts_one_thread(
    live_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    llm.script_for("openai/scripted-model", "Design A.", "Design B.")
    page, _ = _review_page(live_server, new_context)
    form = page.locator("#thread-form")
    form.get_by_label("Blind round").check()

    form.get_by_role("button", name="Start the thread").dblclick()
    expect(page).to_have_url(re.compile(r"/threads/\d+$"))
    page.wait_for_load_state()
    assert _count(live_server, Thread) == 1


def _decide_every_item(server: LiveServer, email: str, project_id: int) -> None:
    data = DecisionWrite(status=DecisionStatus.DECIDED, summary="Decided", rationale="Because.")
    with server.db.transaction() as session:
        actor = session.scalar(select(User).where(User.email == email))
        assert actor is not None
        items = session.scalars(
            select(ChecklistItem.id).where(ChecklistItem.project_id == project_id)
        )
        for item_id in items.all():
            decisions.record_decision(session, item_id=item_id, data=data, actor=actor)


def test_generate_code_being_sent_has_its_button_disabled_until_the_answer(
    live_server: LiveServer, new_context: NewContext, llm: ScriptedLLM
) -> None:
    """A second click while the first is sent was queued by htmx and started a second
    generation once the first was answered."""
    llm.script(Reply(text="def handle(message): ...\n" * 20, chunk_size=8, delay_s=0.05))
    email = create_user(live_server, Role.MEMBER, "Mia")
    project_id = create_project(live_server, email)
    _decide_every_item(live_server, email, project_id)
    page = new_context().new_page()
    open_review(page, live_server, email, project_id)

    generate = page.get_by_role("button", name="Generate code")
    _disabled_until_answered(page, generate, r"/projects/\d+/generations$", "Generating")
    assert _count(live_server, Generation) == 1


def _fill_decision(page: Page) -> Locator:
    panel = open_item(page.locator("article.item").first)
    panel.get_by_label("Summary").fill("Retry with backoff")
    panel.get_by_label("Rationale").fill("The downstream recovers within seconds.")
    return panel.get_by_role("button", name="Record decision")


def _fill_design(page: Page) -> Locator:
    page.get_by_label("Proposed architecture").fill("One writer per account.")
    return page.get_by_role("button", name="Save design")


def _fill_item(page: Page) -> Locator:
    page.get_by_text("Add a checklist item").click()
    form = page.locator("#add-item-form")
    form.get_by_label("Title").fill("Replay after a restore")
    form.get_by_label("Question").fill("How are messages sent twice told apart?")
    return form.get_by_role("button", name="Add item")


@pytest.mark.parametrize(
    ("fill", "path", "answered"),
    [
        (_fill_decision, r"/items/\d+/decision$", "Recorded revision 1."),
        (_fill_design, r"/projects/\d+/design$", "Saved as version 2."),
        (_fill_item, r"/projects/\d+/checklist$", "Added"),
    ],
    ids=["decision", "design", "checklist-item"],
)
def test_a_form_being_sent_has_its_button_disabled_until_the_answer(
    live_server: LiveServer,
    new_context: NewContext,
    fill: Callable[[Page], Locator],
    path: str,
    answered: str,
) -> None:
    page, _ = _review_page(live_server, new_context)
    _disabled_until_answered(page, fill(page), path, answered)


def _fill_token(page: Page, url: str) -> Locator:
    page.goto(f"{url}/admin/tokens")
    page.get_by_label("Label").fill("laptop")
    return page.get_by_role("button", name="Create token")


def _fill_new_user(page: Page, url: str) -> Locator:
    page.goto(f"{url}/admin/users")
    form = page.locator("#new-user-form")
    form.get_by_label("Email").fill("new@example.com")
    form.get_by_label("First password").fill("a long first password")
    return form.get_by_role("button", name="Create user")


@pytest.mark.parametrize(
    ("fill", "path", "answered"),
    [
        (_fill_token, r"/admin/tokens$", "New token"),
        (_fill_new_user, r"/admin/users$", "new@example.com"),
    ],
    ids=["token", "new-user"],
)
def test_an_admin_form_being_sent_has_its_button_disabled_until_the_answer(
    live_server: LiveServer,
    new_context: NewContext,
    fill: Callable[[Page, str], Locator],
    path: str,
    answered: str,
) -> None:
    email = create_user(live_server, Role.ADMIN, "Ada")
    page = new_context().new_page()
    sign_in(page, live_server, email)
    _disabled_until_answered(page, fill(page, live_server.url), path, answered)


def _disabled_until_answered(page: Page, button: Locator, path: str, answered: str) -> None:
    """Click ``button`` while its request (to ``path``) is held: it is disabled and one
    request went out; once the answer (saying ``answered``) is in, it is enabled again."""
    held: list[Route] = []
    page.route(re.compile(path), lambda route: held.append(route))

    button.click()
    expect(button).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()
    expect(page.get_by_role("status").filter(has_text=answered)).to_be_visible()
    expect(button).to_be_enabled()
