"""The debate pane and the thread page without a browser: forms, roles, escaping, live swaps."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.live import LocalHub
from app.models import Message, Thread
from app.services import debate_events
from tests import factories
from tests.conftest import Actor, make_settings
from tests.hardening.web_helpers import token_in
from tests.llm_server import Reply, ScriptedLLM
from tests.web.test_pages import HTMX, sign_in

MODEL = "openai/scripted-model"
OTHER = "openai/second-model"
JUDGE = "openai/judge-model"
HOSTILE = (
    "Design A <script>window.pwned=1</script>\n\n"
    '<img src=x onerror="window.pwned=2">\n\n'
    '<div hx-get="/logout" hx-trigger="load">steer</div>'
)


@pytest.fixture
def settings(database_url: str, llm_server: ScriptedLLM) -> Settings:
    """Two debating models and a separate judge, all answered by the scripted server."""
    return make_settings(
        database_url,
        model=MODEL,
        models=[MODEL, OTHER],
        judge_model=JUDGE,
        llm_api_base=llm_server.api_base,
        llm_api_key="test-key",
        llm_timeout_s=2.0,
        llm_warmup=False,
        llm_backoff_base_s=0.0,
        llm_backoff_max_s=0.0,
    )


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def start(client: TestClient, token: str, project_id: int, **fields: Any) -> tuple[int, TestClient]:
    """Start a thread through the form; the test client has run its replies on return."""
    form = {"mode": "blind", "models": [MODEL], "opening": "", "csrf_token": token, **fields}
    response = client.post(f"/projects/{project_id}/threads", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/threads/(\d+)", response.headers["location"])
    assert match
    return int(match.group(1)), client


def thread_rows(db: Database) -> list[Thread]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(Thread)))


def test_the_review_page_shows_threads_the_withheld_design_and_a_start_form(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    page = client.get(f"/projects/{project['id']}").text
    assert 'id="debates"' in page
    assert "Design withheld from the model" in page
    assert "no blind round has a complete reply with text yet" in page
    assert 'id="thread-form"' in page
    assert page.count('name="models"') == 2  # every configured model can be chosen
    item = factories.checklist(client, member, project["id"])[0]
    opened = client.get(f"/items/{item['id']}", headers={"HX-Request": "true"}).text
    assert f"/projects/{project['id']}/threads/new?mode=failure_walk&amp;item_id={item['id']}" in (
        opened
    )

    llm.script("Design one: a queue. Design two: a table.")
    thread_id, _ = start(client, token, project["id"])
    page = client.get(f"/projects/{project['id']}").text
    assert f'href="/threads/{thread_id}"' in page
    assert "Blind round" in page
    assert "Design shown to the model" in page  # the blind round is complete now
    assert "prompts outside blind rounds now include" in page


def test_a_blind_thread_page_shows_the_reply_the_prompt_and_its_accounting(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script("# Two designs\n\n- **queue**\n- table")
    thread_id, _ = start(client, token, project["id"])
    page = client.get(f"/threads/{thread_id}").text
    assert "<h1>Blind round</h1>" in page
    assert "<h1>Two designs</h1>" in page  # Markdown, rendered and sanitised
    assert 'data-status="complete"' in page
    assert "Propose at least two independent designs" in page  # the opening sent for the team
    assert "What the model saw" in page
    prompt = re.search(r'<details class="prompt".*?</details>', page, flags=re.S)
    assert prompt
    assert project["problem"] in prompt.group(0)
    assert factories.ARCHITECTURE not in prompt.group(0)
    assert "Tokens 11 in / 7 out" in page
    assert 'id="message-form"' in page


def test_a_blind_round_with_two_models_stores_and_shows_both_side_by_side(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script_for(MODEL, "First model: use an outbox.")
    llm.script_for(OTHER, "Second model: use idempotent consumers.")
    thread_id, _ = start(client, token, project["id"], models=[MODEL, OTHER])
    page = client.get(f"/threads/{thread_id}").text
    replies = re.search(r'id="turn-1-replies">(.*?)</section>', page, flags=re.S)
    assert replies
    assert "First model: use an outbox." in replies.group(1)
    assert "Second model: use idempotent consumers." in replies.group(1)
    assert "There is no vote" in page


def test_starting_a_thread_needs_the_csrf_token_and_a_writer(
    client: TestClient, member: Actor, viewer: Actor, db: Database
) -> None:
    project = factories.create_project(client, member)
    form = {"mode": "blind", "models": [MODEL]}
    token = sign_in(client, member.email)
    missing = client.post(f"/projects/{project['id']}/threads", data=form)
    assert missing.status_code == 403
    assert "security token" in missing.text

    viewer_token = sign_in(client, viewer.email)
    page = client.get(f"/projects/{project['id']}").text
    assert 'id="thread-form"' not in page
    assert "threads/new?mode=failure_walk" not in page
    forged = client.post(
        f"/projects/{project['id']}/threads", data={**form, "csrf_token": viewer_token}
    )
    assert forged.status_code == 403
    assert "viewer" in forged.text
    assert client.get(f"/projects/{project['id']}/threads/new").status_code == 403
    assert thread_rows(db) == []
    assert token != viewer_token


def test_a_viewer_reads_a_thread_but_cannot_post_in_it(
    client: TestClient, member: Actor, viewer: Actor, llm: ScriptedLLM, db: Database
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script("A reply.")
    thread_id, _ = start(client, token, project["id"])
    viewer_token = sign_in(client, viewer.email)
    page = client.get(f"/threads/{thread_id}").text
    assert "A reply." in page
    assert 'id="message-form"' not in page
    forged = client.post(
        f"/threads/{thread_id}/messages",
        data={"content": "forged", "pushback": "true"},
        headers={"X-CSRF-Token": viewer_token},
    )
    assert forged.status_code == 403
    with db.transaction(write=False) as session:
        assert session.scalar(select(Message).where(Message.content == "forged")) is None


def test_model_text_is_inert_on_the_thread_page(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member, problem="Orders <script>x()</script>")
    token = sign_in(client, member.email)
    llm.script(HOSTILE)
    thread_id, _ = start(client, token, project["id"], opening="<b>bold</b> <script>y()</script>")
    page = client.get(f"/threads/{thread_id}").text
    found = elements(page)
    assert not [tag for tag, _ in found if tag in {"img", "iframe"}]
    assert [attrs.get("src") for tag, attrs in found if tag == "script"] == [
        "/static/vendor/htmx.min.js",
        "/static/vendor/sse.js",
        "/static/app.js",
    ]
    assert not [a for _, a in found if "hx-get" in a or "hx-trigger" in a or "onerror" in a]
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "Orders &lt;script&gt;x()&lt;/script&gt;" in page  # in "What the model saw"


def test_posting_validates_the_message_and_keeps_what_was_typed(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script("First position.")
    thread_id, _ = start(client, token, project["id"])
    empty = client.post(
        f"/threads/{thread_id}/messages",
        data={"content": "  ", "pushback": "true"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert empty.status_code == 422
    assert 'id="message-content-error"' in empty.text
    assert re.search(r'name="pushback" value="true" checked', empty.text)
    assert "<html" not in empty.text


def test_a_failure_walk_needs_an_item_and_a_challenge_needs_a_decision(
    client: TestClient, member: Actor, db: Database
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    headers = {**HTMX, "X-CSRF-Token": token}
    url = f"/projects/{project['id']}/threads"
    walk = client.post(url, data={"mode": "failure_walk", "opening": "Mine"}, headers=headers)
    assert walk.status_code == 422
    assert "needs a checklist_item_id" in walk.text
    assert ">Mine</textarea>" in walk.text
    challenge = client.post(
        url, data={"mode": "challenge", "checklist_item_id": str(item["id"])}, headers=headers
    )
    assert challenge.status_code == 409
    assert "nothing to challenge" in challenge.text
    unknown = client.post(url, data={"mode": "blind", "models": ["openai/x"]}, headers=headers)
    assert unknown.status_code == 422
    assert "Not configured on this server" in unknown.text
    assert thread_rows(db) == []


def test_the_new_thread_page_is_prefilled_for_an_item(client: TestClient, member: Actor) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[1]
    sign_in(client, member.email)
    page = client.get(
        f"/projects/{project['id']}/threads/new?mode=failure_walk&item_id={item['id']}"
    ).text
    assert re.search(r'value="failure_walk" checked', page)
    assert re.search(rf'<option value="{item["id"]}" selected>', page)
    assert "Walk the failure modes of this item" in page


def test_pushback_marks_a_capitulation_on_the_thread_page(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member, blind_first=False)
    token = sign_in(client, member.email)
    llm.script_for(MODEL, "Keep the outbox.", "You are right, drop the outbox.")
    verdict = {"position_changed": True, "new_argument": False, "explanation": "No new facts."}
    llm.script_for(JUDGE, json.dumps(verdict))
    thread_id, _ = start(client, token, project["id"], mode="open", opening="Outbox?")
    response = client.post(
        f"/threads/{thread_id}/messages",
        data={"content": "Drop it, just do it my way.", "pushback": "true"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert 'id="message-sent"' in response.text
    page = client.get(f"/threads/{thread_id}").text
    assert 'data-flag="capitulated"' in page
    assert 'data-flag="pushback"' in page
    assert "without a new argument: a capitulation" in page
    assert "What the judge saw" in page


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    name, data = "message", []
    for line in lines:
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))
        elif not line and data:
            yield name, "\n".join(data)
            name, data = "message", []


def _swaps(html: str) -> list[tuple[str, str, str]]:
    """(target, how, inner HTML) of each out-of-band swap in an update."""
    pattern = (
        r'<div id="([^"]+)" hx-swap-oob="([^"]+)">(.*?)</div>(?=<div id="[^"]+" hx-swap-oob|$)'
    )
    return re.findall(pattern, html, flags=re.S)


def test_the_live_thread_stream_skips_what_the_page_shows_then_appends_and_streams(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script("Opening reply.")
    thread_id, _ = start(client, token, project["id"])
    shown = re.search(
        r'sse-connect="/threads/\d+/events\?shown=(\w+)"', client.get(f"/threads/{thread_id}").text
    )
    assert shown
    slow = "".join(f"piece {n:02d} <i>; " for n in range(12))
    llm.script(Reply(text=slow, chunk_size=10, delay_s=0.1))

    def post() -> None:
        client.post(
            f"/threads/{thread_id}/messages",
            data={"content": "And now?"},
            headers={**HTMX, "X-CSRF-Token": token},
        )

    poster = threading.Thread(target=post)
    swaps: list[tuple[str, str, str]] = []
    url = f"/threads/{thread_id}/events?shown={shown.group(1)}"
    with client.stream("GET", url) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        poster.start()
        for name, data in _events(response.iter_lines()):
            assert name == "update"
            swaps.extend(_swaps(data))
            if any('data-status="complete"' in html for _, _, html in swaps[-4:]):
                break
    poster.join(timeout=30)
    targets = [(target, how) for target, how, _ in swaps]
    assert ("thread-turns", "innerHTML") not in targets  # the page already showed the snapshot
    assert targets[0] == ("thread-turns", "beforeend")  # the team's new turn
    assert "And now?" in swaps[0][2]
    reply_id = re.search(r'id="msg-(\d+)"', swaps[2][2])
    assert targets[2] == ("turn-2-replies", "beforeend")
    assert reply_id
    streamed = "".join(html for t, how, html in swaps if t == f"msg-{reply_id.group(1)}-text")
    assert streamed  # text arrived while the reply was being written
    assert "&lt;i&gt;" in streamed
    assert "<i>" not in streamed
    assert slow.replace("<", "&lt;").replace(">", "&gt;").startswith(streamed)
    assert (f"msg-{reply_id.group(1)}-body", "innerHTML") in targets


def test_a_stream_that_does_not_know_the_page_gets_the_whole_thread_first(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script("Reply <script>alert(1)</script> text.")
    thread_id, _ = start(client, token, project["id"])
    with client.stream("GET", f"/threads/{thread_id}/events?shown=stale") as response:
        name, data = next(_events(response.iter_lines()))
    assert name == "update"
    (turns, summary) = _swaps(data)
    assert turns[:2] == ("thread-turns", "innerHTML")
    assert "Reply &lt;script&gt;alert(1)&lt;/script&gt; text." in turns[2]
    assert summary[0] == "thread-summary"


def test_the_meeting_page_lists_the_latest_model_replies(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script("A meeting-worthy <b>reply</b>.")
    thread_id, _ = start(client, token, project["id"])
    client.post(f"/projects/{project['id']}/meeting", data={"csrf_token": token})
    page = client.get(f"/projects/{project['id']}/meeting").text
    replies = re.search(r'id="meeting-replies"(.*?)</section>', page, flags=re.S)
    assert replies
    assert f'href="/threads/{thread_id}"' in replies.group(1)
    assert "A meeting-worthy &lt;b&gt;reply&lt;/b&gt;." in replies.group(1)
    assert "walk this item's failure modes" in page
    assert token_in(page)


def test_a_reply_cut_mid_stream_shows_its_reason_and_keeps_the_partial_text(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    token = sign_in(client, member.email)
    llm.script(
        Reply(
            text="Partial words that stop here and the rest is lost",
            chunk_size=8,
            cut_after_chunks=2,
        )
    )
    thread_id, _ = start(client, token, project["id"])
    page = client.get(f"/threads/{thread_id}").text
    assert 'data-status="error"' in page
    assert ">failed<" in page
    assert re.search(
        r'id="msg-\d+-error"><strong>[^<]+</strong> The partial text \(16 characters\)', page
    )
    assert "Partial words th" in page


def test_a_quiet_thread_stream_marks_its_snapshot_and_then_says_it_is_idle(
    client: TestClient, member: Actor, db: Database
) -> None:
    project = factories.create_project(client, member)
    created = client.post(
        f"/api/v1/projects/{project['id']}/threads", json={"mode": "blind"}, headers=member.headers
    )
    assert created.status_code == 201

    async def first_kinds() -> list[str]:
        async def connected() -> bool:
            return False

        events = debate_events.thread_events(
            db=db,
            hub=LocalHub(),
            thread_id=created.json()["id"],
            disconnected=connected,
            mark_synced=True,
            idle_after_s=1.0,
        )
        kinds = []
        async for event in events:
            kinds.append(event.kind)
            if event.kind == debate_events.IDLE:
                break
        await events.aclose()
        return kinds

    # A thread of its own: the browser tests' driver keeps an event loop on this one.
    with ThreadPoolExecutor(1) as pool:
        kinds = pool.submit(asyncio.run, first_kinds()).result(timeout=30)
    assert kinds == [debate_events.SYNCED, debate_events.IDLE]
