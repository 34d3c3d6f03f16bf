"""PostgreSQL stopped and started again under a stream of decisions.

A real `designgate serve` on a cluster of the test's own. While the database is gone,
requests fail with 503 problem+json (not 500, not a hang); once it is back the same
process serves again, and every decision acknowledged with 200 is still there.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app import runners
from app.config import normalise_database_url
from app.models import Message
from tests.after_gate.sse import events
from tests.conftest import is_postgres
from tests.hardening.pg_cluster import Cluster
from tests.hardening.server import Server, designgate_env, run_cli
from tests.hardening.test_real_server_faults import open_gate
from tests.llm_server import Reply, ScriptedLLM

pytestmark = pytest.mark.skipif(not is_postgres(), reason="a PostgreSQL outage needs PostgreSQL")

WRITERS = 4
ITEMS_PER_WRITER = 2
REQUEST_TIMEOUT_S = 15.0
PHASE_TIMEOUT_S = 90.0


@dataclass
class Tally:
    """What the writers saw: acknowledged decisions, statuses, problems, transport errors."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[tuple[int, int, str]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    unavailable_bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    retry_after: set[str] = field(default_factory=set)

    def count(self, status: int) -> int:
        with self.lock:
            return self.statuses[status]

    def acks(self) -> int:
        with self.lock:
            return len(self.acknowledged)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    own = Cluster().init()
    own.start()
    yield own
    own.destroy()


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _items(http: httpx.Client) -> list[int]:
    project = http.post("/api/v1/projects", json={"name": "Outage", "problem": "Stay up"}).json()
    for number in range(WRITERS * ITEMS_PER_WRITER - 6):
        body = {"category": "recovery", "title": f"Extra {number}", "question": "And then?"}
        http.post(f"/api/v1/projects/{project['id']}/checklist", json=body)
    return [item["id"] for item in http.get(f"/api/v1/projects/{project['id']}/checklist").json()]


def _write_decisions(
    http: httpx.Client, items: list[int], tally: Tally, stop: threading.Event
) -> None:
    """Supersede each of our items' decisions in turn, from the revision last acknowledged."""
    revision = dict.fromkeys(items, 0)
    sequence = 0
    while not stop.is_set() and sequence < 5000:
        item = items[sequence % len(items)]
        sequence += 1
        summary = f"item {item} decision {sequence}"
        body = {
            "status": "decided",
            "summary": summary,
            "rationale": "r",
            "version": revision[item],
        }
        try:
            response = http.put(f"/api/v1/checklist-items/{item}/decision", json=body)
        except httpx.TransportError as exc:
            with tally.lock:
                tally.transport_errors.append(repr(exc))
            continue
        revision[item] = _after(http, item, response, tally, summary, revision[item])


def _after(
    http: httpx.Client, item: int, response: httpx.Response, tally: Tally, summary: str, at: int
) -> int:
    """Record what the write got; return the revision the next write must supersede."""
    with tally.lock:
        tally.statuses[response.status_code] += 1
        if response.status_code == 200:
            tally.acknowledged.append((item, response.json()["revision"], summary))
            return int(response.json()["revision"])
        if response.status_code == 503:
            tally.unavailable_bodies.append((response.headers["content-type"], response.json()))
            tally.retry_after.add(response.headers.get("retry-after", ""))
    if response.status_code == 409:
        # The write committed but its answer was lost in the outage: carry on from there.
        return int(response.json()["current_revision"])
    if response.status_code == 503:
        time.sleep(0.05)
    return at


def test_decisions_survive_postgresql_stopping_and_starting(
    cluster: Cluster, tmp_path: Path
) -> None:
    outages_under_load(cluster, tmp_path, ["fast"])


@pytest.mark.soak
def test_decisions_survive_repeated_postgresql_stops_and_crashes(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Fast shutdowns, and immediate ones (no checkpoint: crash recovery at start)."""
    outages_under_load(cluster, tmp_path, ["fast", "immediate"] * 4)


def outages_under_load(cluster: Cluster, tmp_path: Path, stop_modes: list[str]) -> None:
    env = designgate_env(cluster.create_database("designgate"))
    server = Server(env, tmp_path / "server.log").start()
    try:
        run_cli(
            env,
            "user",
            "create",
            "ops@example.test",
            "--role",
            "member",
            "--password-stdin",
            stdin="a long enough password",
        )
        token = run_cli(env, "token", "create", "ops@example.test").stdout.strip().splitlines()[-1]
        _outages_under_load(server, cluster, token, stop_modes)
    finally:
        server.stop()
    assert "Traceback" not in server.output()


def _outages_under_load(
    server: Server, cluster: Cluster, token: str, stop_modes: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    tally, stop = Tally(), threading.Event()
    with server.client(headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
        items = _items(http)
        writers = [
            threading.Thread(
                target=_write_decisions,
                args=(http, items[n::WRITERS], tally, stop),
                daemon=True,
            )
            for n in range(WRITERS)
        ]
        for writer in writers:
            writer.start()
        try:
            downs = [_one_outage(http, cluster, tally, mode) for mode in stop_modes]
            acks = tally.acks()
            _wait_for(lambda: tally.acks() >= acks + 40, "decisions after the last outage")
        finally:
            stop.set()
            for writer in writers:
                writer.join(timeout=REQUEST_TIMEOUT_S * 2)
        for down in downs:
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
        _check(http, tally)


def _one_outage(http: httpx.Client, cluster: Cluster, tally: Tally, mode: str) -> httpx.Response:
    """Writes go on, the database stops, 503s pile up, it starts; writes go on again."""
    acks, unavailable = tally.acks(), tally.count(503)
    _wait_for(lambda: tally.acks() >= acks + 40, "decisions before the outage")
    cluster.stop(mode=mode)
    _wait_for(lambda: tally.count(503) >= unavailable + 20, "503s while the database is down")
    down = http.get("/healthz")
    cluster.start()
    _wait_for(lambda: http.get("/healthz").status_code == 200, "the app to recover")
    return down


def _check(http: httpx.Client, tally: Tally) -> None:
    assert tally.acks() > 0
    assert set(tally.statuses) <= {200, 409, 503}, tally.statuses
    assert tally.transport_errors == []
    assert tally.retry_after == {"2"}
    for content_type, problem in tally.unavailable_bodies:
        assert content_type == "application/problem+json"
        assert problem["status"] == 503
    stored = set()
    for item in {item for item, _revision, _summary in tally.acknowledged}:
        history = http.get(f"/api/v1/checklist-items/{item}/decisions").json()["revisions"]
        stored |= {(item, r["revision"], r["summary"]) for r in history}
    missing = [ack for ack in tally.acknowledged if ack not in stored]
    assert missing == [], f"{len(missing)} acknowledged decisions were lost"


REPLY = "Design one: a queue consumer. Design two: a table with a unique key. " * 20
CODE = "def store_order(order):\n    return order\n" * 40


@contextmanager
def _serving_model_work(
    cluster: Cluster,
    llm: ScriptedLLM,
    tmp_path: Path,
    outage_seen: str = "waits for the database, which is unavailable",
) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server whose model is the scripted one, and a member's API headers; at the end,
    ``outage_seen`` must be in its log."""
    env = designgate_env(
        cluster.create_database("designgate"),
        model="openai/scripted-model",
        llm_api_base=llm.api_base,
        llm_api_key="test-key",
        llm_max_retries="0",
    )
    with Server(env, tmp_path / "server.log") as server:
        command = ["user", "create", "ops@example.test", "--role", "member", "--password-stdin"]
        run_cli(env, *command, stdin="a long enough password").check_returncode()
        token = run_cli(env, "token", "create", "ops@example.test").stdout.strip().splitlines()[-1]
        yield server, {"Authorization": f"Bearer {token}"}
    assert "Traceback" not in server.output()
    # The outage did reach the model's work.
    assert outage_seen in server.output()


def _outage_until_sent(
    http: httpx.Client, cluster: Cluster, streamed: Reply, url: str, mode: str = "fast"
) -> None:
    """Stop the database once some text is saved; start it once the model has sent all of
    it and the server has had a second to take the end."""
    _wait_for(lambda: _read(http, url).get("content", "") != "", "saved text")
    cluster.stop(mode=mode)
    assert streamed.sent.wait(PHASE_TIMEOUT_S), "the model did not finish"
    time.sleep(1.0)
    assert http.get(url).status_code == 503
    cluster.start()
    _wait_for(lambda: http.get("/healthz").status_code == 200, "the app to recover")
    _wait_for(lambda: _read(http, url).get("status") not in (None, "streaming"), "the end")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_reply_that_ends_while_postgresql_is_down_is_stored_once_it_is_back(
    cluster: Cluster, llm: ScriptedLLM, tmp_path: Path, mode: str
) -> None:
    """The model goes on writing through the outage and finishes while the database is
    gone: the final save waits for the database, so the reply is stored whole and its
    thread takes questions again, without a restart. Also after a crash of the database
    (``immediate``: no shutdown checkpoint, crash recovery at the next start)."""
    streamed = Reply(text=REPLY, chunk_size=8, delay_s=0.05)
    llm.script(streamed, "The next answer.")
    with (
        _serving_model_work(cluster, llm, tmp_path) as (server, headers),
        server.client(headers=headers, timeout=REQUEST_TIMEOUT_S) as http,
    ):
        thread_url = _open_thread(http)
        http.post(f"{thread_url}/messages", json={"content": "Go"}).raise_for_status()
        reply_url = f"{thread_url}?last"
        _outage_until_sent(http, cluster, streamed, reply_url, mode)
        reply = _read(http, reply_url)
        asked = http.post(f"{thread_url}/messages", json={"content": "And then?"})
    assert (reply["status"], reply["content"]) == ("complete", REPLY)
    assert asked.status_code == 202


def test_a_generation_that_ends_while_postgresql_is_down_is_stored_once_it_is_back(
    cluster: Cluster, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """The same for code generation, whose text so far could not be saved meanwhile either:
    the stream goes on, and the whole code is stored once the database is back."""
    streamed = Reply(text=CODE, chunk_size=16, delay_s=0.05)
    llm.script(streamed)
    with (
        _serving_model_work(cluster, llm, tmp_path) as (server, headers),
        server.client(headers=headers, timeout=REQUEST_TIMEOUT_S) as http,
    ):
        project = open_gate(http)
        started = http.post(f"/api/v1/projects/{project['id']}/generations", json={})
        generation_url = f"/api/v1/generations/{started.json()['id']}"
        _outage_until_sent(http, cluster, streamed, generation_url)
        generation = _read(http, generation_url)
    assert (generation["status"], generation["content"]) == ("complete", CODE)


def _read(http: httpx.Client, url: str) -> dict[str, Any]:
    """A generation, or a thread's last message (``?last``); empty while the database is gone."""
    response = http.get(url.removesuffix("?last"))
    if response.status_code != 200:
        return {}
    found: dict[str, Any] = response.json()
    return found["messages"][-1] if url.endswith("?last") else found


def test_another_server_follows_a_reply_across_the_outage_to_its_end(
    cluster: Cluster, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """Two servers on one database, as a team runs them: the question is asked of the first,
    and its thread's event stream read from the second. The stream outlives the outage (the
    second's listener connects again) and ends with the whole reply, stored once the
    database is back."""
    streamed = Reply(text=REPLY, chunk_size=8, delay_s=0.05)
    llm.script(streamed)
    with (
        _serving_model_work(cluster, llm, tmp_path) as (first, headers),
        Server(first.env, tmp_path / "second.log") as second,
        first.client(headers=headers, timeout=REQUEST_TIMEOUT_S) as http,
    ):
        thread_url = _open_thread(http)
        follower = _Follower(second, headers, f"{thread_url}/events")
        follower.start()
        _wait_for(follower.subscribed.is_set, "the second server's event stream")
        http.post(f"{thread_url}/messages", json={"content": "Go"}).raise_for_status()
        _outage_until_sent(http, cluster, streamed, f"{thread_url}?last")
        follower.join(timeout=PHASE_TIMEOUT_S)
        assert "Traceback" not in second.output()
    assert follower.error is None
    assert (follower.last["status"], follower.last["content"]) == ("complete", REPLY)


class _Follower(threading.Thread):
    """Reads a thread's event stream until its reply is no longer streaming."""

    def __init__(self, server: Server, headers: dict[str, str], url: str) -> None:
        super().__init__(daemon=True)
        self.server, self.headers, self.url = server, headers, url
        self.subscribed = threading.Event()
        self.last: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                self.server.client(headers=self.headers, timeout=PHASE_TIMEOUT_S) as http,
                http.stream("GET", self.url) as response,
            ):
                response.raise_for_status()
                self.subscribed.set()
                for name, data in events(response.iter_lines()):
                    if name == "message" and data["role"] == "assistant":
                        self.last = data
                        if data["status"] != "streaming":
                            return
        except BaseException as exc:  # reported by the test, not lost in this thread
            self.error = exc


# The live listener's attempts come 0.2, 0.5, 1, 2 and 5 s apart (app/live_postgres.py), at
# 8.7 s in all, then every 10 s: a database down this long comes back about 9 s before the
# first server's listener tries again, and the second server starts within that time.
DOWN_BETWEEN_LISTENER_ATTEMPTS_S = 9.5


def test_a_server_that_starts_just_after_postgresql_does_leaves_live_work_alone(
    cluster: Cluster, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """A server starting marks the work of server processes that are gone, told by their
    advisory locks; a restart of PostgreSQL frees every lock until each listener connects
    again. A second server that starts in those seconds leaves the first's reply streaming
    (it then ends complete, as the first stores it); it marks the work of a process that is
    really gone once the first has had time to connect again."""
    # About 17 s of text: the model still writes when the second server has started.
    streamed = Reply(text=REPLY * 2, chunk_size=8, delay_s=0.05)
    llm.script(streamed)
    progress_not_saved = "could not save the text of streaming replies"
    with (
        _serving_model_work(cluster, llm, tmp_path, progress_not_saved) as (first, headers),
        first.client(headers=headers, timeout=REQUEST_TIMEOUT_S) as http,
    ):
        thread_url = _open_thread(http)
        http.post(f"{thread_url}/messages", json={"content": "Go"}).raise_for_status()
        reply_url = f"{thread_url}?last"
        abandoned = _reply_of_a_gone_process(first.env["DESIGNGATE_DATABASE_URL"], http)
        _wait_for(lambda: _read(http, reply_url).get("content", "") != "", "saved text")
        cluster.stop()
        time.sleep(DOWN_BETWEEN_LISTENER_ATTEMPTS_S)
        cluster.start()
        with Server(first.env, tmp_path / "second.log") as second:
            assert not streamed.sent.is_set(), "the model ended before the second server began"
            _wait_for(lambda: _read(http, reply_url).get("status") != "streaming", "the end")
            reply = _read(http, reply_url)
            _wait_for(lambda: _read(http, abandoned).get("status") != "streaming", "the mark")
            gone = _read(http, abandoned)
        assert "Traceback" not in second.output()
    assert (reply["status"], reply["content"]) == ("complete", REPLY * 2)
    assert gone["status"] == "interrupted"
    assert "seem gone, is marked in 20 s if they are gone still" in second.output()


def _reply_of_a_gone_process(database_url: str, http: httpx.Client) -> str:
    """A thread whose reply a server process that no longer runs left streaming."""
    thread_url = _open_thread(http)
    thread_id = int(thread_url.rsplit("/", 1)[1])
    engine = create_engine(normalise_database_url(database_url))
    try:
        with Session(engine) as session, session.begin():
            session.add(
                Message(
                    thread_id=thread_id,
                    turn=1,
                    role="assistant",
                    status="streaming",
                    model="openai/scripted-model",
                    content="half a rep",
                    runner=runners.new_runner(),
                )
            )
    finally:
        engine.dispose()
    return f"{thread_url}?last"


def _open_thread(http: httpx.Client) -> str:
    project = http.post("/api/v1/projects", json={"name": "Orders", "problem": "p"}).json()
    thread = http.post(f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"})
    return f"/api/v1/threads/{thread.json()['id']}"
