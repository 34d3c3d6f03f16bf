"""Threads and messages through the API: modes, fan-out, permissions, conflicts."""

import pytest
from fastapi.testclient import TestClient

from app import runners
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.models import Message
from tests import factories
from tests.conftest import Actor, is_postgres
from tests.debates.conftest import MODEL
from tests.debates.helpers import (
    add_streaming_reply,
    item_in,
    last_reply,
    replies,
    say,
    start_thread,
    thread,
)
from tests.llm_server import Reply, ScriptedLLM
from tests.perf.test_statement_counts import counted_statements

MODEL_A = "openai/model-a"
MODEL_B = "openai/model-b"
two_models = pytest.mark.parametrize(
    "settings_overrides", [{"models": [MODEL_A, MODEL_B]}], ids=["DESIGNGATE_MODELS=a,b"]
)


@two_models
def test_a_blind_round_with_two_models_keeps_one_reply_per_model_side_by_side(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    assert blind["models"] == [MODEL_A, MODEL_B]
    llm.script_for(MODEL_A, "A: event sourcing or a plain table.")
    llm.script_for(MODEL_B, "B: an outbox or change data capture.")
    posted = say(client, member, blind["id"], "Propose designs.")
    assert [r["model"] for r in posted["replies"]] == [MODEL_A, MODEL_B]
    assert {r["status"] for r in posted["replies"]} == {"streaming"}
    view = thread(client, member, blind["id"])
    by_model = {r["model"]: r for r in replies(view)}
    assert by_model[MODEL_A]["content"] == "A: event sourcing or a plain table."
    assert by_model[MODEL_B]["content"] == "B: an outbox or change data capture."
    assert {r["status"] for r in by_model.values()} == {"complete"}
    assert {r["turn"] for r in by_model.values()} == {1}
    assert [s["model"] for s in view["stats"]] == [MODEL_A, MODEL_B]
    assert len(llm.requests_for(MODEL_A)) == len(llm.requests_for(MODEL_B)) == 1


@two_models
def test_each_model_continues_its_own_conversation(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind", models=[MODEL_A, MODEL_B])
    llm.script_for(MODEL_A, "A1", "A2")
    llm.script_for(MODEL_B, "B1", "B2")
    say(client, member, blind["id"], "Propose designs.")
    say(client, member, blind["id"], "Which would you pick?")
    second_a = llm.requests_for(MODEL_A)[1]["messages"]
    assert [m["content"] for m in second_a if m["role"] == "assistant"] == ["A1"]


@two_models
def test_a_failing_model_does_not_stop_the_other(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind", models=[MODEL_A, MODEL_B])
    llm.script_for(MODEL_A, Reply(status=401, error_message="no"))
    llm.script_for(MODEL_B, "B works.")
    say(client, member, blind["id"], "Propose designs.")
    by_model = {r["model"]: r for r in replies(thread(client, member, blind["id"]))}
    assert by_model[MODEL_A]["status"] == "error"
    assert by_model[MODEL_B]["status"] == "complete"


@two_models
def test_a_thread_may_pick_among_configured_models_only(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    only_b = start_thread(client, member, project["id"], "open", models=[MODEL_B])
    assert only_b["models"] == [MODEL_B]
    refused = client.post(
        f"/api/v1/projects/{project['id']}/threads",
        json={"mode": "open", "models": ["openai/somebody-elses-model"]},
        headers=member.headers,
    )
    assert refused.status_code == 422
    assert "openai/somebody-elses-model" in refused.json()["detail"]


def test_threads_default_to_the_configured_model_and_are_listed(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    assert blind["models"] == [MODEL]
    assert blind["messages"] == []
    listed = client.get(f"/api/v1/projects/{project['id']}/threads", headers=member.headers)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [blind["id"]]


def test_a_failure_walk_needs_an_item_of_the_same_project(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    other = factories.create_project(client, member, name="Other")
    url = f"/api/v1/projects/{project['id']}/threads"
    missing = client.post(url, json={"mode": "failure_walk"}, headers=member.headers)
    assert missing.status_code == 422
    foreign_item = item_in(client, member, other["id"], "load")
    foreign = client.post(
        url,
        json={"mode": "failure_walk", "checklist_item_id": foreign_item["id"]},
        headers=member.headers,
    )
    assert foreign.status_code == 422


def test_a_challenge_needs_a_decision_and_attacks_the_current_one(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    item = item_in(client, member, project["id"], "resilience")
    url = f"/api/v1/projects/{project['id']}/threads"
    body = {"mode": "challenge", "checklist_item_id": item["id"]}
    refused = client.post(url, json=body, headers=member.headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    factories.decide(client, member, item, summary="Retry three times with jitter.")
    challenge = start_thread(
        client, member, project["id"], "challenge", **{"checklist_item_id": item["id"]}
    )
    llm.script("It fails when the broker redelivers.")
    say(client, member, challenge["id"], "Attack it.")
    prompt = llm.prompts_text()[0]
    assert "Retry three times with jitter." in prompt
    assert "devil's advocate" in prompt


def test_viewers_can_read_threads_but_not_write(
    client: TestClient, member: Actor, viewer: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    create = client.post(
        f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"}, headers=viewer.headers
    )
    post = client.post(
        f"/api/v1/threads/{blind['id']}/messages", json={"content": "hi"}, headers=viewer.headers
    )
    assert (create.status_code, post.status_code) == (403, 403)
    assert client.get(f"/api/v1/threads/{blind['id']}", headers=viewer.headers).status_code == 200
    assert llm.requests == []


def test_unknown_threads_are_404(client: TestClient, member: Actor) -> None:
    assert client.get("/api/v1/threads/999999", headers=member.headers).status_code == 404
    events = client.get("/api/v1/threads/999999/events", headers=member.headers)
    assert events.status_code == 404
    post = client.post(
        "/api/v1/threads/999999/messages", json={"content": "hi"}, headers=member.headers
    )
    assert post.status_code == 404


def test_a_new_message_waits_for_the_reply_in_flight(
    client: TestClient, member: Actor, db: Database, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    with db.transaction() as session:
        session.add(
            Message(
                thread_id=blind["id"], turn=1, role="assistant", status="streaming", model=MODEL
            )
        )
    refused = client.post(
        f"/api/v1/threads/{blind['id']}/messages", json={"content": "hi"}, headers=member.headers
    )
    assert refused.status_code == 409
    assert llm.requests == []


def test_replies_left_streaming_are_marked_interrupted_at_start_up(
    client: TestClient, member: Actor, db: Database, settings: Settings
) -> None:
    """A reply whose server is gone is marked; on PostgreSQL, where several servers share
    the database, one that a live server (this test's app) is still writing is not."""
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    # Run by a server process that is gone: no live process holds this runner.
    add_streaming_reply(db, blind["id"], runners.new_runner(), "half a rep", model=MODEL)
    add_streaming_reply(db, blind["id"], db.runner, "still writ", model=MODEL, turn=2)
    with TestClient(create_app(settings)) as restarted:
        left_behind, still_running = replies(thread(restarted, member, blind["id"]))
    assert left_behind["status"] == "interrupted"
    assert left_behind["content"] == "half a rep"
    assert "server stopped" in left_behind["error"]
    # SQLite serves one process: whatever was streaming when it starts was left behind.
    assert still_running["status"] == ("streaming" if is_postgres() else "interrupted")
    assert still_running["content"] == "still writ"


def test_threads_and_messages_leave_an_audit_trail(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script("Designs.")
    say(client, member, blind["id"], "Propose designs.")
    trail = client.get(f"/api/v1/projects/{project['id']}/audit", headers=member.headers).json()
    actions = [event["action"] for event in trail]
    assert actions[:2] == ["message.posted", "thread.created"]


def test_a_post_does_not_read_back_the_prompts_of_earlier_replies(
    client: TestClient, member: Actor, db: Database, llm: ScriptedLLM
) -> None:
    """Each reply stores the whole prompt it was sent, history included: a post that read
    them back for the thread's messages read the history over and over (41 to 45 ms for a
    post in a thread of 120 messages, 8 to 9 ms without)."""
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script("Designs.", "Retries with backoff.")
    say(client, member, blind["id"], "How would you build it?")
    with counted_statements(db) as statements:
        say(client, member, blind["id"], "And the retries?")
    thread_reads = [s for s in statements if "WHERE messages.thread_id =" in s]
    assert thread_reads, "the post did not read the thread's messages at all"
    assert [s for s in thread_reads if "messages.prompt" in s] == []
    assert last_reply(client, member, blind["id"])["content"] == "Retries with backoff."
