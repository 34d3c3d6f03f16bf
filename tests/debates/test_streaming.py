"""Replies stream: partial text is persisted while they are written and streamed over SSE."""

import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.models import Message
from tests import factories
from tests.after_gate.sse import events as sse_events
from tests.conftest import Actor
from tests.debates.helpers import last_reply, say, start_thread
from tests.llm_server import Reply, ScriptedLLM

SLOW_TEXT = "".join(f"part {n:02d}; " for n in range(16))  # 16 chunks of 9 characters


def _slow_reply() -> Reply:
    return Reply(text=SLOW_TEXT, chunk_size=9, delay_s=0.1)


def _stored_reply(db: Database, thread_id: int) -> Message | None:
    with db.transaction(write=False) as session:
        return session.scalar(
            select(Message).where(Message.thread_id == thread_id, Message.role == "assistant")
        )


def _post_in_background(client: TestClient, member: Actor, thread_id: int) -> threading.Thread:
    poster = threading.Thread(target=say, args=(client, member, thread_id, "Propose designs."))
    poster.start()
    return poster


def _wait_for_partial_text(db: Database, thread_id: int, poster: threading.Thread) -> Message:
    """The stored reply as soon as it has text but is still streaming."""
    while poster.is_alive():
        reply = _stored_reply(db, thread_id)
        if reply is not None and reply.status == "streaming" and reply.content:
            return reply
        time.sleep(0.05)
    raise AssertionError("no partial text was persisted while the reply streamed")


def test_partial_text_is_persisted_while_the_reply_streams(
    client: TestClient, member: Actor, db: Database, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(_slow_reply())
    poster = _post_in_background(client, member, blind["id"])
    partial = _wait_for_partial_text(db, blind["id"], poster)
    # Saved with the text: when the first piece came, and when it was saved.
    assert partial.first_token_ms is not None
    assert partial.updated_at > partial.created_at
    poster.join(timeout=30)
    final = last_reply(client, member, blind["id"])
    assert final["status"] == "complete"
    assert final["content"] == SLOW_TEXT
    assert SLOW_TEXT.startswith(partial.content)
    assert len(partial.content) < len(SLOW_TEXT)


def test_the_event_stream_sends_the_current_text_on_connect_and_ends_on_disconnect(
    app: FastAPI, client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script("Two designs: <script>alert(1)</script>")
    say(client, member, blind["id"], "Propose designs.")
    url = f"/api/v1/threads/{blind['id']}/events"
    with client.stream("GET", url, headers=member.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
        first, second = next(events), next(events)
        assert app.state.hub.subscriber_count(f"thread:{blind['id']}") == 1
    assert first[0] == second[0] == "message"
    assert (first[1]["role"], first[1]["content"]) == ("user", "Propose designs.")
    assert second[1]["content"] == "Two designs: <script>alert(1)</script>"
    assert second[1]["status"] == "complete"
    assert "<script" not in second[1]["content_html"]
    assert app.state.hub.subscriber_count(f"thread:{blind['id']}") == 0


def test_a_client_that_reconnects_mid_reply_sees_the_text_so_far_then_the_rest(
    client: TestClient, member: Actor, db: Database, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(_slow_reply())
    poster = _post_in_background(client, member, blind["id"])
    _wait_for_partial_text(db, blind["id"], poster)
    url = f"/api/v1/threads/{blind['id']}/events"
    with client.stream("GET", url, headers=member.headers) as response:
        text, final = _follow_reply(sse_events(response.iter_lines()))
    poster.join(timeout=30)
    assert final["status"] == "complete"
    assert final["content"] == SLOW_TEXT
    # What the client had (snapshot plus deltas) was always a prefix of the final text.
    assert SLOW_TEXT.startswith(text)
    assert text


def _follow_reply(events: Iterator[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """Apply snapshot and deltas like a browser would, until the reply is finished."""
    text = ""
    for name, data in events:
        if name == "message" and data["role"] == "assistant":
            if data["status"] != "streaming":
                return text, data
            text = data["content"]
        elif name == "delta":
            assert data["offset"] == len(text), "deltas continue exactly where the text ends"
            text += data["delta"]
    raise AssertionError("the stream ended before the reply finished")


def test_live_deltas_carry_the_new_text(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    url = f"/api/v1/threads/{blind['id']}/events"
    llm.script(_slow_reply())
    with client.stream("GET", url, headers=member.headers) as response:
        events = sse_events(response.iter_lines())
        poster = _post_in_background(client, member, blind["id"])
        deltas: list[dict[str, Any]] = []
        for name, data in events:
            if name == "delta":
                deltas.append(data)
            if name == "message" and data["role"] == "assistant" and data["status"] == "complete":
                break
    poster.join(timeout=30)
    assert deltas
    assert all(d["status"] == "streaming" and d["id"] == deltas[0]["id"] for d in deltas)
    assert SLOW_TEXT.startswith("".join(d["delta"] for d in deltas))


def test_each_piece_reaches_subscribers_as_it_arrives_not_on_the_save_timer(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    url = f"/api/v1/threads/{blind['id']}/events"
    llm.script(_slow_reply())
    with client.stream("GET", url, headers=member.headers) as response:
        poster = _post_in_background(client, member, blind["id"])
        text, final = _follow_reply_counting(sse_events(response.iter_lines()))
    poster.join(timeout=30)
    assert final["content"] == SLOW_TEXT == "".join(text)
    # One delta per streamed chunk: saving (every PERSIST_INTERVAL_S) batches several of them.
    assert text == [SLOW_TEXT[i : i + 9] for i in range(0, len(SLOW_TEXT), 9)]


def _follow_reply_counting(
    events: Iterator[tuple[str, dict[str, Any]]],
) -> tuple[list[str], dict[str, Any]]:
    pieces: list[str] = []
    for name, data in events:
        if name == "message" and data["role"] == "assistant" and data["status"] != "streaming":
            return pieces, data
        if name == "delta":
            assert set(data) == {"type", "id", "status", "offset", "delta", "length"}
            assert data["offset"] == sum(map(len, pieces))
            pieces.append(data["delta"])
    raise AssertionError("the stream ended before the reply finished")
