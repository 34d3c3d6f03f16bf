"""Two people on one review page: rows update live, and an opened form that went stale
gets a conflict that keeps what was typed."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.models import User
from app.models.enums import Category, DecisionStatus, Role
from app.schemas.checklist import ChecklistItemCreate, DecisionWrite
from app.services import decisions, projects, users
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


def test_a_decision_updates_the_other_page_live_and_its_stale_form_gets_a_conflict(
    live_server: LiveServer, new_context: NewContext
) -> None:
    first_email = create_user(live_server, Role.MEMBER, "Mia")
    second_email = create_user(live_server, Role.MEMBER, "Noor")
    project_id = create_project(live_server, first_email)
    mine, theirs = new_context().new_page(), new_context().new_page()
    sign_in(mine, live_server, first_email)
    sign_in(theirs, live_server, second_email)
    for page in (mine, theirs):
        page.goto(f"{live_server.url}/projects/{project_id}")
    their_form = open_item(theirs.locator("article.item").first).locator("form.decision-form")
    their_form.get_by_label("Summary").fill("Noor's summary, typed first")
    their_form.get_by_label("Rationale").fill("Noor's reasons")

    my_item = mine.locator("article.item").first
    my_form = open_item(my_item).locator("form.decision-form")
    my_form.get_by_label("Summary").fill("Mia decided first")
    my_form.get_by_label("Rationale").fill("Mia's reasons")
    my_form.get_by_role("button", name="Record decision").click()
    expect(my_form.get_by_role("status")).to_contain_text("Recorded revision 1")
    expect(my_item.locator("[id$='-record']")).to_contain_text("Mia's reasons")

    their_row = theirs.locator("article.item").first.locator("[id$='-state']")
    expect(their_row).to_contain_text("Mia decided first")  # over the live stream
    expect(their_row.locator("[data-state='decided']")).to_be_visible()
    their_form.get_by_role("button", name="Record decision").click()
    conflict = their_form.get_by_role("alert")
    expect(conflict).to_contain_text("Mia decided first")
    expect(their_form.get_by_label("Summary")).to_have_value("Noor's summary, typed first")
    their_form.get_by_role("button", name="Record decision").click()
    expect(their_form.get_by_role("status")).to_contain_text("Recorded revision 2")
    expect(mine.locator("article.item").first.locator("[id$='-state']")).to_contain_text(
        "Noor's summary, typed first"
    )


def _record_as(server: LiveServer, email: str, item_id: int, summary: str, version: int) -> None:
    """A decision recorded elsewhere (another screen, the API), through the same service."""
    with server.db.transaction() as session:
        actor = session.scalar(select(User).where(User.email == email))
        assert actor is not None
        data = DecisionWrite(
            status=DecisionStatus.ACCEPTED_RISK,
            summary=summary,
            rationale=f"Why: {summary}",
            version=version,
        )
        decisions.record_decision(session, item_id=item_id, data=data, actor=actor)


def _item_ids(server: LiveServer, project_id: int) -> list[int]:
    with server.db.transaction() as session:
        project = projects.get_project(session, project_id)
        return [entry.item.id for entry in decisions.checklist(session, project)]


def test_an_open_item_shows_each_new_revision_and_keeps_text_being_typed(
    live_server: LiveServer, new_context: NewContext
) -> None:
    ann = create_user(live_server, Role.MEMBER, "Ann")
    bob_email = create_user(live_server, Role.MEMBER, "Bob")
    project_id = create_project(live_server, ann)
    first_id, second_id = _item_ids(live_server, project_id)[:2]
    bob = new_context().new_page()
    sign_in(bob, live_server, bob_email)
    bob.goto(f"{live_server.url}/projects/{project_id}")
    item = bob.locator(f"#item-{first_id}")
    panel = open_item(item)
    record, form = panel.locator("[id$='-record']"), panel.locator("form.decision-form")
    expect(record).to_contain_text("No decision yet")

    _record_as(live_server, ann, first_id, "Ann takes the risk", version=0)
    expect(item.locator("[id$='-state']")).to_contain_text("Ann takes the risk")
    expect(record).to_contain_text("Why: Ann takes the risk")  # the untouched form follows
    expect(form.get_by_label("Summary")).to_have_value("Ann takes the risk")

    form.get_by_label("Summary").fill("Bob's better summary, typed")
    _record_as(live_server, ann, first_id, "Ann revises it", version=1)
    expect(record).to_contain_text("Why: Ann revises it")
    expect(record).to_contain_text("Revision history (2 revisions)")
    expect(form.get_by_role("status")).to_contain_text("Revision 2 was recorded")
    expect(form.get_by_label("Summary")).to_have_value("Bob's better summary, typed")
    form.get_by_role("button", name="Record decision").click()  # based on revision 1: 409
    expect(form.get_by_role("alert")).to_contain_text("Ann revises it")
    expect(form.get_by_label("Summary")).to_have_value("Bob's better summary, typed")

    other = bob.locator(f"#item-{second_id}")
    open_item(other)
    other.locator("details > summary").click()  # closed again
    _record_as(live_server, ann, second_id, "Ann decides the second", version=0)
    expect(other.locator("[id$='-state']")).to_contain_text("Ann decides the second")
    other.locator("details > summary").click()
    expect(other.locator("[id$='-record']")).to_contain_text("Why: Ann decides the second")


def test_an_item_added_elsewhere_gets_its_row_live_and_follows_its_decisions(
    live_server: LiveServer, new_context: NewContext
) -> None:
    ann = create_user(live_server, Role.MEMBER, "Ann")
    bob_email = create_user(live_server, Role.MEMBER, "Bob")
    project_id = create_project(live_server, ann)
    bob = new_context().new_page()
    sign_in(bob, live_server, bob_email)
    bob.goto(f"{live_server.url}/projects/{project_id}")
    load = bob.locator("#cat-load")
    rows_before = load.locator("article.item").count()

    with live_server.db.transaction() as session:
        actor = session.scalar(select(User).where(User.email == ann))
        assert actor is not None
        data = ChecklistItemCreate(
            category=Category.LOAD, title="Batch import floods", question="What then?"
        )
        item_id = decisions.add_item(session, project_id=project_id, data=data, actor=actor).item.id

    row = load.locator(f"#item-{item_id}")
    expect(row).to_contain_text("Batch import floods")  # in its category, without a reload
    expect(load.locator("article.item")).to_have_count(rows_before + 1)
    expect(load.locator("article.item").last).to_have_id(f"item-{item_id}")
    expect(bob.locator("#gate-missing")).to_contain_text("Batch import floods")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "open")

    _record_as(live_server, ann, item_id, "Ann caps the batch size", version=0)
    expect(row.locator("[id$='-state']")).to_contain_text("Ann caps the batch size")
    expect(open_item(row).locator("[id$='-record']")).to_contain_text("Why: Ann caps")


def test_a_writer_adds_an_item_from_the_review_page_and_everyone_sees_its_row(
    live_server: LiveServer, new_context: NewContext
) -> None:
    ann = create_user(live_server, Role.MEMBER, "Ann")
    bob_email = create_user(live_server, Role.MEMBER, "Bob")
    vic_email = create_user(live_server, Role.VIEWER, "Vic")
    project_id = create_project(live_server, ann)
    pages = {email: new_context().new_page() for email in (ann, bob_email, vic_email)}
    for email, page in pages.items():
        sign_in(page, live_server, email)
        page.goto(f"{live_server.url}/projects/{project_id}")
    mine, bob, vic = pages[ann], pages[bob_email], pages[vic_email]
    expect(vic.get_by_text("Add a checklist item")).to_have_count(0)  # viewers read only

    mine.get_by_text("Add a checklist item").click()
    form = mine.locator("#add-item-form")
    form.get_by_label("Category").select_option(label="Recovery")
    form.get_by_role("button", name="Add item").click()  # no title, no question: 422
    expect(form.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("#add-item-title-error")).to_have_text("This field is required.")
    expect(form.locator("#add-item-question-error")).to_have_text("This field is required.")
    expect(form.get_by_label("Category")).to_have_value("recovery")

    form.get_by_label("Title").fill("Restore from last night's backup")
    form.get_by_label("Question").fill("How much is lost, and who notices?")
    form.get_by_role("button", name="Add item").click()
    expect(form.get_by_role("status")).to_contain_text("Added “Restore from last night's backup”")
    expect(form.get_by_label("Title")).to_have_value("")
    for page in (mine, bob, vic):
        row = page.locator("#cat-recovery article.item").last
        expect(row).to_contain_text("Restore from last night's backup")
        expect(page.locator("#gate-missing")).to_contain_text("Restore from last night's backup")
    panel = open_item(bob.locator("#cat-recovery article.item").last)
    expect(panel).to_contain_text("How much is lost, and who notices?")


def test_a_role_changed_meanwhile_is_told_on_the_open_page_and_its_saves_are_refused(
    live_server: LiveServer, new_context: NewContext
) -> None:
    admin_email = create_user(live_server, Role.ADMIN, "Ada")
    email = create_user(live_server, Role.MEMBER, "Mia")
    page = new_context().new_page()
    open_review(page, live_server, email, create_project(live_server, email))
    page.get_by_label("Proposed architecture").fill("One writer per account.")
    notice = page.locator("#role-notice")
    expect(notice).to_be_empty()

    _change_role(live_server, admin_email, email, Role.VIEWER)
    expect(notice).to_contain_text("Your role is now viewer")  # over the live stream
    expect(notice).to_contain_text("no longer saved")
    page.get_by_role("button", name="Save design").click()
    expect(page.locator("#flash [role='alert'], #design [role='alert']").first).to_be_visible()
    expect(page.get_by_label("Proposed architecture")).to_have_value("One writer per account.")

    notice.get_by_role("link", name="Reload the page").click()
    expect(page.get_by_role("button", name="Save design")).to_have_count(0)
    expect(notice).to_be_empty()


def _change_role(server: LiveServer, admin_email: str, email: str, role: Role) -> None:
    """An admin's change on another screen, through the same service."""
    with server.db.transaction() as session:
        admin = session.scalar(select(User).where(User.email == admin_email))
        user = session.scalar(select(User).where(User.email == email))
        assert admin is not None
        assert user is not None
        users.change_role(session, user_id=user.id, role=role, actor=admin)
