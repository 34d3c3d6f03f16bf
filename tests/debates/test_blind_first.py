"""Rule 3: no prompt carries the design until the project has a completed blind round."""

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.models import Message
from app.services import debate_overview
from tests import factories
from tests.conftest import Actor
from tests.debates.helpers import item_in, last_reply, say, start_thread, thread
from tests.llm_server import Reply, ScriptedLLM


def _mentions_design(text: str) -> bool:
    return factories.ARCHITECTURE in text or factories.DATA_MODEL in text


def test_blind_prompt_never_contains_the_design_and_a_later_failure_walk_does(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member, constraints="Python, PostgreSQL")
    blind = start_thread(client, member, project["id"], "blind")
    assert blind["design_visible"] is False
    llm.script("Design 1: a queue consumer. Design 2: an outbox.")
    say(client, member, blind["id"], "Propose designs.")
    blind_prompt = llm.prompts_text()[0]
    assert "Orders arrive on a queue" in blind_prompt
    assert "Python, PostgreSQL" in blind_prompt
    assert not _mentions_design(blind_prompt)

    item = item_in(client, member, project["id"], "degradation")
    walk = start_thread(client, member, project["id"], "failure_walk", checklist_item_id=item["id"])
    assert walk["design_visible"] is True
    llm.script("When PostgreSQL is down the consumer ...")
    say(client, member, walk["id"], "Walk it.")
    walk_prompt = llm.prompts_text()[1]
    assert factories.ARCHITECTURE in walk_prompt
    assert factories.DATA_MODEL in walk_prompt
    assert item["question"] in walk_prompt


def test_every_reply_stores_exactly_the_messages_the_server_received(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script("First answer.", "Second answer.")
    say(client, member, blind["id"], "Propose designs.")
    say(client, member, blind["id"], "Which is cheaper to run?")
    stored = [m["prompt"] for m in thread(client, member, blind["id"])["messages"] if m["prompt"]]
    assert stored == [request["messages"] for request in llm.requests]
    # The second prompt carries the conversation so far.
    assert [m["role"] for m in stored[1]] == ["system", "user", "assistant", "user"]
    assert stored[1][2]["content"] == "First answer."


def test_no_prompt_carries_the_design_before_the_blind_round(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    item = item_in(client, member, project["id"], "load")
    walk = start_thread(client, member, project["id"], "failure_walk", checklist_item_id=item["id"])
    opened = start_thread(client, member, project["id"], "open")
    assert walk["design_visible"] is False
    llm.script("Walk without the design.", "Talk without the design.")
    say(client, member, walk["id"], "Walk it.")
    say(client, member, opened["id"], "What do you think of our plan?")
    assert len(llm.requests) == 2
    assert not any(_mentions_design(text) for text in llm.prompts_text())
    assert "withheld until a blind design round is complete" in llm.prompts_text()[0]


@pytest.mark.parametrize(
    "answer",
    [
        Reply(status=401, error_message="bad key"),
        Reply(text=""),
        Reply(text="  \n  "),
        Reply(text="Design 1: a queue", finish_reason="length"),
        Reply(text="Design 1: a queue", finish_reason="content_filter"),
    ],
    ids=["failed", "empty", "whitespace", "cut-at-max-tokens", "content-filter"],
)
def test_a_blind_round_without_a_whole_answer_does_not_reveal_the_design(
    client: TestClient, member: Actor, llm: ScriptedLLM, answer: Reply
) -> None:
    """Only a whole answer is a completed blind round (an empty one released the design);
    a later whole answer then releases it."""
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(answer)
    say(client, member, blind["id"], "Propose designs.")
    assert last_reply(client, member, blind["id"])["status"] == "error"
    opened = start_thread(client, member, project["id"], "open")
    assert opened["design_visible"] is False
    llm.script("Still blind.")
    say(client, member, opened["id"], "Thoughts?")
    assert not _mentions_design(llm.prompts_text()[-1])

    llm.script("Design 1: a queue consumer. Design 2: an outbox.")
    say(client, member, blind["id"], "Propose designs again.")
    assert thread(client, member, opened["id"])["design_visible"] is True


@pytest.mark.parametrize("content", ["", " \n\t "], ids=["empty", "whitespace"])
def test_an_empty_reply_stored_as_complete_by_an_earlier_version_does_not_reveal_the_design(
    client: TestClient, member: Actor, db: Database, content: str
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    with db.transaction() as session:
        stored = Message(
            thread_id=blind["id"],
            turn=1,
            role="assistant",
            status="complete",
            model="openai/scripted-model",
            content=content,
        )
        session.add(stored)
    opened = start_thread(client, member, project["id"], "open")
    assert opened["design_visible"] is False
    # The review page says why in words true of what is stored: a blind round has a
    # complete reply, but none with text.
    with db.transaction(write=False) as session:
        reason = debate_overview.disclosure(session, project_id=project["id"]).reason
    assert "no blind round has a complete reply with text yet" in reason


def test_blind_first_off_shows_the_design_at_once_but_never_in_a_blind_thread(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member, blind_first=False)
    opened = start_thread(client, member, project["id"], "open")
    assert opened["design_visible"] is True
    llm.script("I see the design.", "Two designs of my own.")
    say(client, member, opened["id"], "Thoughts?")
    assert _mentions_design(llm.prompts_text()[0])
    blind = start_thread(client, member, project["id"], "blind")
    say(client, member, blind["id"], "Propose designs.")
    assert not _mentions_design(llm.prompts_text()[1])


def test_blind_round_asks_for_two_designs_with_trade_offs_and_failure_modes(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script("Designs.")
    say(client, member, blind["id"], "Go.")
    system = llm.requests[0]["messages"][0]["content"]
    assert "at least two genuinely different designs" in system
    assert "trade-offs" in system
    assert "failure modes" in system
