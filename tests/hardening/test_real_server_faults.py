"""A real `designgate serve` while the model misbehaves: it stalls, or the server is killed.

- A generation that hangs on the model does not hold up anything else: reads answer.
- SIGKILL while a reply and a generation stream: at restart both are marked interrupted
  with their partial text, and everything committed before the kill is still there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from app.config import normalise_database_url
from app.models import Generation, Message
from tests.conftest import Actor, is_postgres
from tests.hardening.server import Server, designgate_env, free_port, run_cli
from tests.llm_server import Reply, ScriptedLLM

CODE = "def store_order(order):\n    return order\n" * 40
REPLY = "Design one: a queue consumer. Design two: a table with a unique key. " * 10
INTERRUPTED = "Interrupted: the server stopped while the model was still writing."


@pytest.fixture
def server_env(database_url: str, llm: ScriptedLLM) -> dict[str, str]:
    return designgate_env(
        database_url,
        model="openai/scripted-model",
        llm_api_base=llm.api_base,
        llm_api_key="test-key",
        llm_timeout_s="30",
        llm_max_retries="0",
    )


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    with Server(server_env, tmp_path / "server.log") as running:
        yield running


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def open_gate(http: httpx.Client) -> dict[str, Any]:
    """A project with a decision on every item, so code may be generated."""
    project: dict[str, Any] = http.post(
        "/api/v1/projects", json={"name": "Orders", "problem": "Store each order once"}
    ).json()
    for item in http.get(f"/api/v1/projects/{project['id']}/checklist").json():
        body = {"status": "decided", "summary": "s", "rationale": "r", "version": 0}
        assert http.put(f"/api/v1/checklist-items/{item['id']}/decision", json=body).is_success
    return project


def test_reads_answer_while_a_generation_hangs_on_the_model(
    server: Server, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script(Reply(text=CODE, wait_before_s=6.0))
    with server.client(headers=member.headers) as http:
        project = open_gate(http)
        started = http.post(f"/api/v1/projects/{project['id']}/generations", json={})
        assert started.status_code == 202
        wait_for(lambda: len(llm.requests) == 1, "the model to be asked")
        for path in ("/healthz", f"/api/v1/projects/{project['id']}", "/api/v1/projects"):
            assert http.get(path, timeout=3).status_code == 200
        gate = http.get(f"/api/v1/projects/{project['id']}/gate", timeout=3)
        assert gate.json()["open"] is True
        generation_url = f"/api/v1/generations/{started.json()['id']}"
        assert http.get(generation_url).json()["status"] == "streaming"  # still hanging
        wait_for(lambda: http.get(generation_url).json()["status"] == "complete", "the code")
        assert http.get(generation_url).json()["content"] == CODE


def _streamed_some(http: httpx.Client, url: str, key: Callable[[Any], str]) -> bool:
    return len(key(http.get(url).json())) > 0


def test_a_sigkill_mid_stream_leaves_interrupted_replies_and_loses_nothing_committed(
    server: Server, server_env: dict[str, str], member: Actor, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.script(
        Reply(text=REPLY, chunk_size=4, delay_s=0.1), Reply(text=CODE, chunk_size=4, delay_s=0.1)
    )
    with server.client(headers=member.headers) as http:
        project = open_gate(http)
        thread = http.post(
            f"/api/v1/projects/{project['id']}/threads", json={"mode": "blind"}
        ).json()
        posted = http.post(f"/api/v1/threads/{thread['id']}/messages", json={"content": "Go"})
        reply_id = posted.json()["replies"][0]["id"]
        wait_for(lambda: len(llm.requests) == 1, "the reply to start")
        generation = http.post(f"/api/v1/projects/{project['id']}/generations", json={}).json()
        thread_url, generation_url = (
            f"/api/v1/threads/{thread['id']}",
            f"/api/v1/generations/{generation['id']}",
        )
        wait_for(lambda: _streamed_some(http, generation_url, lambda g: g["content"]), "code")
        wait_for(
            lambda: _streamed_some(http, thread_url, lambda t: t["messages"][-1]["content"]),
            "reply text",
        )
        before = _committed(http, project["id"], thread["id"])
    assert server.process is not None
    model_processes = _children(server.process.pid)
    assert model_processes, "the model calls run in a process of the server's"
    server.kill()
    # The model process sees its stdin close and exits: nothing of the killed server is left.
    wait_for(lambda: not any(map(_running, model_processes)), "the model process to exit", 10)

    restarted = Server(server_env, tmp_path / "restarted.log")
    with restarted, restarted.client(headers=member.headers) as http:
        reply = next(m for m in http.get(thread_url).json()["messages"] if m["id"] == reply_id)
        stopped = http.get(generation_url).json()
        after = _committed(http, project["id"], thread["id"])
    assert (reply["status"], reply["error_kind"], reply["error"]) == (
        "interrupted",
        "interrupted",
        INTERRUPTED,
    )
    assert 0 < len(reply["content"]) < len(REPLY)
    assert REPLY.startswith(reply["content"])
    assert (stopped["status"], stopped["error"]) == ("error", INTERRUPTED)
    assert 0 < len(stopped["content"]) < len(CODE)
    assert CODE.startswith(stopped["content"])
    assert after == before
    assert "marked 1 unfinished generation(s) as interrupted" in restarted.output()


def test_a_model_process_that_stops_answering_is_replaced_and_its_reply_fails_with_a_reason(
    server_env: dict[str, str], member: Actor, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """SIGSTOP on the model process mid-reply, as a process wedged so it reads no request
    and sends nothing: the server kills it, the reply ends with a reason and its text so far,
    and the next reply is answered by a new model process. Every later call waited the
    model's timeout plus 30 s and failed, for as long as the server ran."""
    llm.script(Reply(text=REPLY, chunk_size=4, delay_s=0.1), Reply(text="Still here."))
    server_env = {**server_env, "DESIGNGATE_LLM_TIMEOUT_S": "5"}
    stopped: list[int] = []
    try:
        with (
            Server(server_env, tmp_path / "server.log") as server,
            server.client(headers=member.headers) as http,
        ):
            project = http.post("/api/v1/projects", json={"name": "Orders", "problem": "p"})
            thread = http.post(
                f"/api/v1/projects/{project.json()['id']}/threads", json={"mode": "blind"}
            )
            thread_url = f"/api/v1/threads/{thread.json()['id']}"
            http.post(f"{thread_url}/messages", json={"content": "Go"}).raise_for_status()
            wait_for(lambda: _last_message(http, thread_url)["content"] != "", "reply text")
            assert server.process is not None
            stopped = _children(server.process.pid)
            assert len(stopped) == 1, "the model calls run in one process of the server's"
            os.kill(stopped[0], signal.SIGSTOP)
            wait_for(lambda: _last_message(http, thread_url)["status"] != "streaming", "the end")
            failed = _last_message(http, thread_url)
            http.post(f"{thread_url}/messages", json={"content": "Next?"}).raise_for_status()
            wait_for(lambda: _last_message(http, thread_url)["status"] != "streaming", "the next")
            answered = _last_message(http, thread_url)
            replaced_by = _children(server.process.pid)
    finally:
        for pid in stopped:  # whatever happened, leave no stopped process behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert (failed["status"], failed["error_kind"]) == ("error", "unavailable")
    assert "The model process stopped answering" in failed["error"]
    assert 0 < len(failed["content"]) < len(REPLY)
    assert REPLY.startswith(failed["content"])
    assert (answered["status"], answered["content"]) == ("complete", "Still here.")
    assert not _running(stopped[0])
    assert len(replaced_by) == 1
    assert replaced_by != stopped
    assert server.output().count("stopped answering") == 1


def test_a_server_stopped_mid_stream_stores_the_text_it_has_as_interrupted(
    server: Server, member: Actor, llm: ScriptedLLM, database_url: str
) -> None:
    """SIGTERM, as a service manager stops a server: the reply and the generation that
    stream are cancelled with the requests that run them, and each stores all the text it
    has, marked interrupted, before the database is closed. They were left streaming with
    the text of their last periodic save until the next start."""
    said, coded = 30, 25  # chunks the model sends before it goes quiet
    reply = Reply(text=REPLY, chunk_size=4, stall_after_chunks=said, stall_s=12)
    code = Reply(text=CODE, chunk_size=4, stall_after_chunks=coded, stall_s=12)
    llm.script(reply, code)
    with server.client(headers=member.headers) as http:
        project = open_gate(http)
        thread = http.post(f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"})
        posted = http.post(
            f"/api/v1/threads/{thread.json()['id']}/messages", json={"content": "Go"}
        )
        reply_id = posted.json()["replies"][0]["id"]
        assert reply.stalled.wait(30), "the reply did not start"
        generation = http.post(f"/api/v1/projects/{project['id']}/generations", json={}).json()
        assert code.stalled.wait(30), "the generation did not start"
    server.stop()

    assert "Traceback" not in server.output()
    stored_reply, stored_code = _stored_outcomes(database_url, reply_id, generation["id"])
    assert stored_reply == ("interrupted", "interrupted", REPLY[: said * 4])
    assert stored_code == ("error", INTERRUPTED, CODE[: coded * 4])


def _stored_outcomes(
    database_url: str, reply_id: int, generation_id: int
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A reply's status, error kind and text, and a generation's status, error and text, as
    the database holds them (no server runs to mark them)."""
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            found_reply = connection.execute(
                select(Message.status, Message.error_kind, Message.content).where(
                    Message.id == reply_id
                )
            ).one()
            found_code = connection.execute(
                select(Generation.status, Generation.error, Generation.content).where(
                    Generation.id == generation_id
                )
            ).one()
    finally:
        engine.dispose()
    return tuple(found_reply), tuple(found_code)


@pytest.mark.skipif(is_postgres(), reason="SQLite's write lock, held by another program")
def test_a_reply_that_ends_while_another_program_holds_sqlites_write_lock_is_stored_after(
    server: Server, member: Actor, llm: ScriptedLLM, database_url: str
) -> None:
    """An operator's `sqlite3` session left in a write transaction: the server's writes get
    "database is locked" after its busy timeout (10 s). A reply that ends meanwhile waits
    for the lock and is stored whole once it is released, where it was lost."""
    streamed = Reply(text=REPLY, chunk_size=8, delay_s=0.05)
    llm.script(streamed)
    with server.client(headers=member.headers, timeout=30) as http:
        project = http.post("/api/v1/projects", json={"name": "Orders", "problem": "p"}).json()
        thread = http.post(f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"})
        thread_url = f"/api/v1/threads/{thread.json()['id']}"
        posted = http.post(f"{thread_url}/messages", json={"content": "Go"})
        reply_id = posted.json()["replies"][0]["id"]
        wait_for(lambda: _last_message(http, thread_url)["content"] != "", "saved text")
        operator = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
        try:
            operator.execute("BEGIN IMMEDIATE")
            assert streamed.sent.wait(60), "the model did not finish"
            wait_for(lambda: "waits for the database" in server.output(), "the final save", 30)
            assert _last_message(http, thread_url)["status"] == "streaming"  # reads go on
        finally:
            operator.rollback()
            operator.close()
        wait_for(lambda: _last_message(http, thread_url)["status"] != "streaming", "the end")
        reply = _last_message(http, thread_url)
    assert (reply["status"], reply["content"]) == ("complete", REPLY)
    assert f"reply {reply_id} went on once the database was back" in server.output()


def _a_reply_streaming(http: httpx.Client) -> str:
    """A blind thread whose reply has begun to stream; its URL."""
    project = http.post("/api/v1/projects", json={"name": "Orders", "problem": "p"}).json()
    thread = http.post(f"/api/v1/projects/{project['id']}/threads", json={"mode": "blind"}).json()
    thread_url = f"/api/v1/threads/{thread['id']}"
    http.post(f"{thread_url}/messages", json={"content": "Go"}).raise_for_status()
    wait_for(
        lambda: _streamed_some(http, thread_url, lambda t: t["messages"][-1]["content"]),
        "reply text",
    )
    return thread_url


@pytest.mark.skipif(not is_postgres(), reason="one server process per SQLite database")
def test_a_second_server_starting_leaves_the_first_ones_reply_alone(
    server: Server, server_env: dict[str, str], member: Actor, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """Start-up marks work left behind by a server that is gone, not another live one's."""
    # Quiet mid-answer long enough for the second server to start however busy the machine.
    llm.script(Reply(text=REPLY, chunk_size=4, delay_s=0.05, stall_after_chunks=20, stall_s=20))
    with server.client(headers=member.headers) as http:
        thread_url = _a_reply_streaming(http)
        second = Server(server_env, tmp_path / "second.log")
        with second, second.client(headers=member.headers) as other:
            seen_by_second = other.get(thread_url).json()["messages"][-1]
        assert seen_by_second["status"] == "streaming"
        wait_for(lambda: _last_message(http, thread_url)["status"] != "streaming", "the end")
        reply = _last_message(http, thread_url)
    assert (reply["status"], reply["content"]) == ("complete", REPLY)
    assert "interrupted" not in second.output()


@pytest.mark.skipif(is_postgres(), reason="several server processes share a PostgreSQL")
def test_a_second_server_on_the_same_sqlite_file_refuses_to_start_and_leaves_the_reply_alone(
    server: Server, server_env: dict[str, str], member: Actor, llm: ScriptedLLM
) -> None:
    """Start-up on SQLite marks every unfinished reply as interrupted: a second server started
    on the file did so to the first one's reply while it was still being written."""
    llm.script(Reply(text=REPLY, chunk_size=4, delay_s=0.05, stall_after_chunks=20, stall_s=5))
    with server.client(headers=member.headers) as http:
        thread_url = _a_reply_streaming(http)

        second = run_cli(server_env, "serve", "--port", str(free_port()))

        assert second.returncode == 2
        assert "another designgate serve" in second.stderr
        assert server.process is not None
        assert f"process {server.process.pid}" in second.stderr
        assert _last_message(http, thread_url)["status"] == "streaming"
        wait_for(lambda: _last_message(http, thread_url)["status"] != "streaming", "the end")
        reply = _last_message(http, thread_url)
    assert (reply["status"], reply["content"]) == ("complete", REPLY)


@pytest.mark.soak
@pytest.mark.skipif(not is_postgres(), reason="one server process per SQLite database")
def test_a_server_that_goes_on_marks_the_work_of_one_killed_beside_it(
    server: Server, server_env: dict[str, str], member: Actor, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """Two servers on one database; one is killed mid-reply and not restarted. The other
    marks the reply within a minute or two (app/services/recovery.py), and the thread takes
    questions again. A soak test: the sweep waits for the killed server to be gone 60 s."""
    llm.script(Reply(text=REPLY, chunk_size=4, delay_s=0.1), "Next answer.")
    survivor = Server(server_env, tmp_path / "survivor.log")
    with survivor, survivor.client(headers=member.headers) as http:
        project = http.post("/api/v1/projects", json={"name": "Orders", "problem": "p"}).json()
        thread = http.post(
            f"/api/v1/projects/{project['id']}/threads", json={"mode": "blind"}
        ).json()
        thread_url = f"/api/v1/threads/{thread['id']}"
        with server.client(headers=member.headers) as doomed:
            doomed.post(f"{thread_url}/messages", json={"content": "Go"}).raise_for_status()
        wait_for(
            lambda: _streamed_some(http, thread_url, lambda t: t["messages"][-1]["content"]),
            "reply text",
        )
        server.kill()
        killed_at = time.monotonic()
        assert _last_message(http, thread_url)["status"] == "streaming"
        assert http.post(f"{thread_url}/messages", json={"content": "Next?"}).status_code == 409
        wait_for(
            lambda: _last_message(http, thread_url)["status"] != "streaming",
            "the survivor to mark the reply",
            timeout_s=150,
        )
        waited_s = time.monotonic() - killed_at
        reply = _last_message(http, thread_url)
        assert http.get("/healthz").status_code == 200
        asked = http.post(f"{thread_url}/messages", json={"content": "Next?"})
    assert (reply["status"], reply["error"]) == ("interrupted", INTERRUPTED)
    assert 0 < len(reply["content"]) < len(REPLY)
    assert REPLY.startswith(reply["content"])
    assert waited_s >= 60  # not before the grace period: a blip is not a death
    assert asked.status_code == 202
    assert "marked 1 unfinished model replies as interrupted (left by" in survivor.output()


def _last_message(http: httpx.Client, thread_url: str) -> dict[str, Any]:
    message: dict[str, Any] = http.get(thread_url).json()["messages"][-1]
    return message


def _children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


def _committed(http: httpx.Client, project_id: int, thread_id: int) -> dict[str, Any]:
    """What was committed and must survive: the design, every decision, the team's words."""
    project = http.get(f"/api/v1/projects/{project_id}").json()
    checklist = http.get(f"/api/v1/projects/{project_id}/checklist").json()
    messages = http.get(f"/api/v1/threads/{thread_id}").json()["messages"]
    return {
        "project": {k: project[k] for k in ("name", "problem", "version", "design_version")},
        "decisions": sorted(
            (i["id"], i["decision"]["revision"], i["decision"]["summary"]) for i in checklist
        ),
        "user_messages": [(m["id"], m["content"]) for m in messages if m["role"] == "user"],
    }
