"""A posted message is one write transaction, begun and committed in one call to a worker
thread.

A meeting posts to many threads at once. When the commit was a call of its own, made once
the event loop got round to it, SQLite's one write lock (PostgreSQL: the thread's row) was
held across that wait and the posts queued behind it.
"""

from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.db import IMMEDIATE, Database
from tests import factories
from tests.conftest import Actor
from tests.debates.helpers import say, start_thread
from tests.llm_server import ScriptedLLM

# Each call to a worker thread runs in its own copy of the caller's context, so a mark set
# when the transaction begins is seen at its commit only if both happen in the same call.
_began_here: ContextVar[object | None] = ContextVar("began_here", default=None)

Span = tuple[str, object | None]  # ("begin" or "commit", the mark seen)


@pytest.fixture
def write_spans(db: Database) -> Iterator[list[Span]]:
    """Each write transaction (``Database.writer``) begun and committed, with its mark."""
    seen: list[Span] = []

    def began(connection: Any) -> None:
        if connection.get_execution_options().get(IMMEDIATE, False):
            mark = object()
            _began_here.set(mark)
            seen.append(("begin", mark))

    def committed(connection: Any) -> None:
        if connection.get_execution_options().get(IMMEDIATE, False):
            seen.append(("commit", _began_here.get()))

    event.listen(db.engine, "begin", began)
    event.listen(db.engine, "commit", committed)
    try:
        yield seen
    finally:
        event.remove(db.engine, "begin", began)
        event.remove(db.engine, "commit", committed)


def test_a_post_commits_in_the_call_that_wrote_it(
    client: TestClient, member: Actor, llm: ScriptedLLM, write_spans: list[Span]
) -> None:
    project = factories.create_project(client, member)
    opened = start_thread(client, member, project["id"], "open")
    llm.script("Because retries need a limit.")
    write_spans.clear()
    posted = say(client, member, opened["id"], "Why a limit?")
    assert posted["user_message"]["content"] == "Why a limit?"
    # The post's own transaction comes first; the reply written in the background follows.
    assert [kind for kind, _mark in write_spans[:2]] == ["begin", "commit"], write_spans
    (_, began_with), (_, committed_seeing) = write_spans[:2]
    assert committed_seeing is began_with
