"""Review page rows are kept by the plain values they show, and by nothing else."""

import re
from collections.abc import Hashable

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.models import ChecklistItem, Message, Thread
from app.web.rows import kept
from app.web.templating import templates
from tests import factories
from tests.conftest import Actor
from tests.web.test_pages import sign_in


def _row_state(html: str, item_id: int) -> str:
    found = re.search(rf'<div id="item-{item_id}-state".*?</div>', html, re.DOTALL)
    assert found is not None
    return found.group(0)


def test_an_items_row_shows_each_new_decision_and_the_state_it_leaves(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    sign_in(client, member.email)
    path = f"/projects/{project['id']}"
    assert 'data-state="open"' in _row_state(client.get(path).text, item["id"])
    factories.decide(client, member, item, summary="Shed load at the edge")
    row = _row_state(client.get(path).text, item["id"])
    assert 'data-state="decided"' in row
    assert "Shed load at the edge" in row
    decided = factories.checklist(client, member, project["id"])[0]
    factories.decide(client, member, decided, summary="Queue, then shed", status="accepted_risk")
    row = _row_state(client.get(path).text, item["id"])
    assert 'data-state="accepted_risk"' in row
    assert "Queue, then shed" in row
    assert "Shed load at the edge" not in row
    assert "revision 2" in row


def test_a_thread_row_shows_each_new_reply(client: TestClient, db: Database, member: Actor) -> None:
    project = factories.create_project(client, member)
    with db.transaction() as session:
        thread = Thread(project_id=project["id"], mode="open", models=["m"], title="Spikes")
        session.add(thread)
    sign_in(client, member.email)
    path = f"/projects/{project['id']}"
    assert "capitulated</span>" not in _thread_row(client.get(path).text, thread.id)
    with db.transaction() as session:
        flags = ["position_changed", "capitulated"]
        reply = Message(thread_id=thread.id, turn=1, role="assistant", status="complete")
        session.add(reply)
        session.flush()
        reply.flags = flags
    row = _thread_row(client.get(path).text, thread.id)
    assert "1 capitulated</span>" in row
    assert "<td>1</td>" in row


def _thread_row(html: str, thread_id: int) -> str:
    found = re.search(rf'<tr data-thread="{thread_id}">.*?</tr>', html, re.DOTALL)
    assert found is not None
    return found.group(0)


@pytest.mark.parametrize("value", [ChecklistItem(id=1, title="t"), ("a", ["list"])])
def test_a_row_is_kept_only_by_plain_values(value: Hashable) -> None:
    """A loaded entity could change under the same identity, and its row would go stale."""
    row = templates.env.get_template("_thread_row.html").module.thread_row  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        kept(row, value)
