"""Live event streams per user are bounded (DESIGNGATE_MAX_STREAMS_PER_USER): each is an open
socket that every change it follows is sent to, so one account (a script that reconnects
without closing, a stolen token) cannot open them without end. Pages' streams and the API's
count together; a stream that ends gives its place back; other users are not affected.

Served by uvicorn, since the streams must stay open while the next one is asked for."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from app.deps import api_stream_held
from app.main import create_app
from app.models.enums import Role
from app.web.deps import page_stream_held
from tests.conftest import Actor, make_actor, make_settings
from tests.hardening.routes import dependency_calls
from tests.hardening.web_helpers import PASSWORD, token_in
from tests.web.conftest import LiveServer

LIMIT = 2
# How long a closed stream may take to give its place back: a stream notices that its client
# left within about a second (it checks between events and keep-alives).
RELEASED_WITHIN_S = 15.0


def test_every_event_stream_route_counts_against_the_limit() -> None:
    """Read from the app's routes, so a stream route added later is checked at once."""
    app = create_app(make_settings("sqlite:///:memory:"))
    streams = {
        str(route.path): set(dependency_calls(route.dependant))
        for route in iter_route_contexts(app.routes)
        if str(route.path).endswith("/events")
    }
    assert len(streams) == 6, sorted(streams)
    uncounted = [
        path for path, calls in streams.items() if not {api_stream_held, page_stream_held} & calls
    ]
    assert uncounted == []


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    served = LiveServer(create_app(make_settings(database_url, max_streams_per_user=LIMIT)))
    served.start()
    yield served
    served.stop()


def _thread_events_url(http: httpx.Client, actor: Actor) -> str:
    """A thread of a new project of ``actor``'s, and the API address of its event stream."""
    created = http.post(
        "/api/v1/projects", json={"name": "Streams", "problem": "p"}, headers=actor.headers
    )
    assert created.status_code == 201, created.text
    threads = f"/api/v1/projects/{created.json()['id']}/threads"
    thread = http.post(threads, json={"mode": "open"}, headers=actor.headers)
    assert thread.status_code == 201, thread.text
    return f"/api/v1/threads/{thread.json()['id']}/events"


def _open(
    stack: ExitStack, http: httpx.Client, url: str, headers: dict[str, str]
) -> httpx.Response:
    """A stream held open until ``stack`` closes; its answer's head has arrived. A refusal
    (a short answer) is read whole; a stream let in is not waited on, so a limit that does
    not hold fails the test at once instead of hanging it."""
    response = stack.enter_context(http.stream("GET", url, headers=headers))
    if response.status_code != 200:
        response.read()
    return response


def test_a_users_api_streams_stop_at_the_limit_and_others_are_not_affected(
    server: LiveServer,
) -> None:
    ann = make_actor(server.db, Role.MEMBER)
    bob = make_actor(server.db, Role.VIEWER)
    with httpx.Client(base_url=server.url, timeout=30) as http, ExitStack() as held:
        url = _thread_events_url(http, ann)
        opened = [_open(held, http, url, headers=ann.headers) for _ in range(LIMIT)]
        assert [stream.status_code for stream in opened] == [200] * LIMIT

        refused = _open(held, http, url, headers=ann.headers)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "5"
        problem = refused.json()
        assert problem["type"] == "urn:designgate:problem:too-many-streams"
        assert "DESIGNGATE_MAX_STREAMS_PER_USER" in problem["detail"]
        # Another user's streams are their own count.
        assert _open(held, http, url, headers=bob.headers).status_code == 200


def test_a_stream_that_ends_gives_its_place_back(server: LiveServer) -> None:
    ann = make_actor(server.db, Role.MEMBER)
    with httpx.Client(base_url=server.url, timeout=30) as http, ExitStack() as held:
        url = _thread_events_url(http, ann)
        with ExitStack() as first:
            assert _open(first, http, url, headers=ann.headers).status_code == 200
            assert _open(held, http, url, headers=ann.headers).status_code == 200
            assert _open(first, http, url, headers=ann.headers).status_code == 429
        # The first stream's client has gone: its place comes back once the server notices.
        deadline = time.monotonic() + RELEASED_WITHIN_S
        while (status := _open(held, http, url, headers=ann.headers).status_code) == 429:
            assert time.monotonic() < deadline, "a closed stream still counts"
            time.sleep(0.2)
        assert status == 200


def test_page_streams_and_api_streams_count_together(server: LiveServer) -> None:
    ann = make_actor(server.db, Role.MEMBER)
    with httpx.Client(base_url=server.url, timeout=30) as browser, ExitStack() as held:
        token = token_in(browser.get("/login").text)
        form = {"email": ann.email, "password": PASSWORD, "csrf_token": token}
        assert browser.post("/login", data=form).status_code == 303
        api_url = _thread_events_url(browser, ann)
        page_url = api_url.removeprefix("/api/v1")
        live = {"Accept": "text/event-stream"}
        assert _open(held, browser, page_url, headers=live).status_code == 200
        assert _open(held, browser, api_url, headers=ann.headers).status_code == 200

        assert _open(held, browser, api_url, headers=ann.headers).status_code == 429
        refused_page = _open(held, browser, page_url, headers=live)
        assert refused_page.status_code == 429
        assert "close some pages" in refused_page.text
