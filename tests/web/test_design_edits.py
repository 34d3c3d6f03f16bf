"""Two people editing the design at once in real Chromium: neither loses what the other saved."""

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from app.models import Project
from app.models.enums import Role
from tests.web.conftest import LiveServer, NewContext, create_project, create_user, sign_in

pytestmark = pytest.mark.browser


def _open_design(
    new_context: NewContext, server: LiveServer, email: str, project_id: int, **options: Any
) -> Page:
    page = new_context(**options).new_page()
    sign_in(page, server, email)
    page.goto(f"{server.url}/projects/{project_id}")
    return page


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save design").click()


def _design(server: LiveServer, project_id: int) -> dict[str, Any]:
    with server.db.transaction(write=False) as session:
        project = session.get(Project, project_id)
        assert project is not None
        fields = ("problem", "architecture", "data_model", "constraints")
        return {name: getattr(project, name) for name in fields}


def _two_editors(server: LiveServer, new_context: NewContext) -> tuple[int, Page, Page]:
    ann = create_user(server, Role.MEMBER, "Ann")
    bob = create_user(server, Role.MEMBER, "Bob")
    project_id = create_project(server, ann)
    return (
        project_id,
        _open_design(new_context, server, ann, project_id),
        _open_design(new_context, server, bob, project_id),
    )


def test_edits_of_different_design_fields_at_once_are_both_kept(
    live_server: LiveServer, new_context: NewContext
) -> None:
    project_id, ann, bob = _two_editors(live_server, new_context)
    ann.get_by_label("Proposed architecture").fill("Ann: one writer per account.")
    _save(ann)
    expect(ann.locator("#design-form [role=status]")).to_contain_text("Saved as version 2")

    bob.get_by_label("Data model").fill("Bob: ledger(entry_id, account, cents)")
    _save(bob)
    expect(bob.locator("#design-form [role=status]")).to_contain_text("Saved as version 3")
    # Bob's form now shows the merged design, so his next save starts from it.
    expect(bob.get_by_label("Proposed architecture")).to_have_value("Ann: one writer per account.")
    design = _design(live_server, project_id)
    assert design["architecture"] == "Ann: one writer per account."
    assert design["data_model"] == "Bob: ledger(entry_id, account, cents)"


def test_saving_again_after_a_conflict_keeps_the_fields_only_the_other_person_changed(
    live_server: LiveServer, new_context: NewContext
) -> None:
    project_id, ann, bob = _two_editors(live_server, new_context)
    ann.get_by_label("Proposed architecture").fill("Ann: one writer per account.")
    ann.get_by_label("Constraints and stack").fill("Ann: PostgreSQL only")
    _save(ann)
    expect(ann.locator("#design-form [role=status]")).to_contain_text("Saved as version 2")

    bob.get_by_label("Proposed architecture").fill("Bob: an append-only ledger.")
    bob.get_by_label("Data model").fill("Bob: ledger(entry_id, account, cents)")
    _save(bob)
    conflict = bob.locator("#design-conflict")
    expect(conflict).to_contain_text("Ann: one writer per account.")
    expect(conflict).not_to_contain_text("Ann: PostgreSQL only")  # no clash there: taken as is
    expect(bob.get_by_label("Proposed architecture")).to_have_value("Bob: an append-only ledger.")
    expect(bob.get_by_label("Constraints and stack")).to_have_value("Ann: PostgreSQL only")

    _save(bob)  # he read theirs and keeps his architecture
    expect(bob.locator("#design-form [role=status]")).to_contain_text("Saved as version 3")
    assert _design(live_server, project_id) == {
        "problem": "Money moves between accounts exactly once.",
        "architecture": "Bob: an append-only ledger.",
        "data_model": "Bob: ledger(entry_id, account, cents)",
        "constraints": "Ann: PostgreSQL only",
    }


def test_renaming_the_project_leaves_a_design_with_line_breaks_as_it_was(
    live_server: LiveServer, new_context: NewContext
) -> None:
    """A form sent without JavaScript sends a textarea's line breaks as CRLF; the untouched
    design is not saved again with them, so its decisions do not go stale."""
    ann = create_user(live_server, Role.MEMBER, "Ann")
    project_id = create_project(live_server, ann)
    with live_server.db.transaction() as session:
        project = session.get(Project, project_id)
        assert project is not None
        project.architecture = "One writer per account.\nA ledger table."
    page = _open_design(new_context, live_server, ann, project_id, java_script_enabled=False)
    page.get_by_label("Name").fill("Payments ledger v2")
    _save(page)
    expect(page.get_by_label("Name")).to_have_value("Payments ledger v2")
    with live_server.db.transaction(write=False) as session:
        project = session.get(Project, project_id)
        assert project is not None
        assert (project.name, project.design_version) == ("Payments ledger v2", 1)
        assert project.architecture == "One writer per account.\nA ledger table."
