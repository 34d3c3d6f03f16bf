"""The live hubs: in-process delivery, after-commit publishing, and LISTEN/NOTIFY across apps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import live, live_postgres
from app.db import Database
from app.main import create_app
from tests.conftest import create_scratch_database, is_postgres, make_settings, run_coroutine
from tests.hardening.server import free_port


@contextlib.asynccontextmanager
async def _two_apps(url: str) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two apps on one database, as two server processes, each hub listening."""
    first, second = (create_app(make_settings(url)) for _ in range(2))
    try:
        await first.state.hub.start()
        await second.state.hub.start()
        yield first, second
    finally:
        for app in (first, second):
            await app.state.hub.stop()
            app.state.db.dispose()


def _commit_event(db: Database, channel: str, event: dict[str, Any]) -> None:
    with db.transaction() as session:
        live.announce(session, channel, event)
        with session.begin_nested():  # a released savepoint is not the commit
            session.execute(text("SELECT 1"))


def test_a_subscriber_of_two_channels_gets_both_in_order() -> None:
    async def scenario() -> list[live.Event | None]:
        hub = live.LocalHub()
        async with hub.subscribe("meeting:1", "project:1") as subscription:
            hub.publish("project:1", {"n": 1})
            hub.publish("elsewhere", {"n": 2})
            hub.publish("meeting:1", {"n": 3})
            hub.reset_all()
            return [await subscription.get(timeout=1) for _ in range(3)]

    assert run_coroutine(scenario()) == [{"n": 1}, {"n": 3}, {"type": "reset"}]


def test_events_published_on_the_loop_and_from_a_thread_arrive_in_order() -> None:
    async def scenario() -> list[live.Event | None]:
        hub = live.LocalHub()
        async with hub.subscribe("thread:1") as subscription:
            hub.publish("thread:1", {"n": 1})  # on the subscriber's loop
            await asyncio.to_thread(hub.publish, "thread:1", {"n": 2})  # from a worker thread
            hub.publish_soon("thread:1", {"n": 3})
            got = [await subscription.get(timeout=1) for _ in range(3)]
            got.append(await subscription.get(timeout=0.05))  # nothing more: a timeout
            hub.publish("thread:1", {"n": 4})
            got.append(await subscription.get(timeout=1))
            return got

    assert run_coroutine(scenario()) == [{"n": 1}, {"n": 2}, {"n": 3}, None, {"n": 4}]


def test_events_are_published_after_commit_and_dropped_on_rollback(database_url: str) -> None:
    async def scenario() -> list[live.Event | None]:
        app = create_app(make_settings(database_url))
        hub: live.LocalHub = app.state.hub
        db: Database = app.state.db
        await hub.start()
        try:
            async with hub.subscribe("project:7") as subscription:
                await asyncio.to_thread(_rolled_back, db)
                await asyncio.to_thread(_commit_event, db, "project:7", {"type": "kept"})
                return [await subscription.get(timeout=5), await subscription.get(timeout=0.3)]
        finally:
            await hub.stop()
            db.dispose()

    assert run_coroutine(scenario()) == [{"type": "kept"}, None]


def _rolled_back(db: Database) -> None:
    with contextlib.suppress(RuntimeError), db.transaction() as session:
        live.announce(session, "project:7", {"type": "dropped"})
        raise RuntimeError("the request failed")


def test_an_event_from_one_app_reaches_a_subscriber_of_another(database_url: str) -> None:
    if not is_postgres():
        pytest.skip("several processes share live updates only on PostgreSQL")

    async def scenario() -> live.Event | None:
        async with _two_apps(database_url) as (first, second):
            assert isinstance(second.state.hub, live_postgres.PostgresHub)
            async with second.state.hub.subscribe("meeting:3") as subscription:
                event = {"type": "vote", "item_id": 9}
                await asyncio.to_thread(_commit_event, first.state.db, "meeting:3", event)
                return await subscription.get(timeout=5)

    assert run_coroutine(scenario()) == {"type": "vote", "item_id": 9}


def test_the_events_of_one_transaction_reach_another_app_in_their_order(
    database_url: str,
) -> None:
    """They go out in one NOTIFY statement; the other app gets each, in order."""
    if not is_postgres():
        pytest.skip("several processes share live updates only on PostgreSQL")

    async def scenario() -> list[live.Event | None]:
        async with (
            _two_apps(database_url) as (first, second),
            second.state.hub.subscribe("thread:8", "project:8") as subscription,
        ):
            await asyncio.to_thread(_commit_events, first.state.db, ONE_TRANSACTION)
            return [await subscription.get(timeout=5) for _ in ONE_TRANSACTION]

    assert run_coroutine(scenario()) == [item for _channel, item in ONE_TRANSACTION]


ONE_TRANSACTION: list[tuple[str, live.Event]] = [
    ("thread:8", {"n": 1}),
    ("project:8", {"n": 2, "text": "a 'quoted', {braced} \"payload\""}),
    *(("thread:8", {"n": n}) for n in range(3, 40)),
]


def _commit_events(db: Database, events: list[tuple[str, live.Event]]) -> None:
    with db.transaction() as session:
        for channel, item in events:
            live.announce(session, channel, item)


def test_a_process_delivers_its_own_events_once_without_its_listener(database_url: str) -> None:
    """Its own events reach its subscribers at commit (and at once, for streamed pieces),
    not by a round trip through LISTEN; when they come back through LISTEN they are
    skipped, while another process still gets them."""
    if not is_postgres():
        pytest.skip("the LISTEN connection exists only on PostgreSQL")

    async def scenario() -> tuple[list[live.Event | None], list[live.Event | None]]:
        async with _two_apps(database_url) as (first, second):
            hub: live_postgres.PostgresHub = first.state.hub
            async with (
                hub.subscribe("thread:4") as here,
                second.state.hub.subscribe("thread:4") as there,
            ):
                await _stop_listening(hub)
                await asyncio.to_thread(_commit_event, first.state.db, "thread:4", {"n": 1})
                hub.publish_soon("thread:4", {"n": 2})
                got_here = [await here.get(timeout=5), await here.get(timeout=5)]
                got_there = [await there.get(timeout=5), await there.get(timeout=5)]
                await hub.start()  # listening again: its own events must not come twice
                await asyncio.to_thread(_commit_event, first.state.db, "thread:4", {"n": 3})
                got_here += [await here.get(timeout=5), await here.get(timeout=0.5)]
                got_there.append(await there.get(timeout=5))
                return got_here, got_there

    here, there = run_coroutine(scenario())
    assert here == [{"n": 1}, {"n": 2}, {"n": 3}, None]
    assert there == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_streamed_pieces_are_notified_only_while_another_process_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streamed piece goes through NOTIFY only when another hub listens on the database
    (one server alone delivered and then skipped the echo of every piece); its own
    subscribers get every piece either way."""
    if not is_postgres():
        pytest.skip("NOTIFY exists only on PostgreSQL")
    monkeypatch.setattr(live_postgres, "PEER_CHECK_S", 0.0)

    async def scenario(
        url: str,
    ) -> tuple[list[str], list[live.Event | None], list[live.Event | None]]:
        first = create_app(make_settings(url))
        hub: live_postgres.PostgresHub = first.state.hub
        observer = await psycopg.AsyncConnection.connect(_conninfo(url), autocommit=True)
        await observer.execute(f"LISTEN {live_postgres.NOTIFY_CHANNEL}")
        await hub.start()
        second = create_app(make_settings(url))
        try:
            async with hub.subscribe("thread:7") as here:
                await _publish_streamed(hub, {"n": 1})  # nobody else listens
                await second.state.hub.start()
                async with second.state.hub.subscribe("thread:7") as there:
                    await _publish_streamed(hub, {"n": 2})
                    seen = [n.payload async for n in observer.notifies(timeout=1)]
                    got_there = [await there.get(timeout=5)]
                got_here = [await here.get(timeout=5), await here.get(timeout=5)]
                return seen, got_here, got_there
        finally:
            await observer.close()
            for app in (first, second):
                await app.state.hub.stop()
                app.state.db.dispose()

    # A database of its own: no other test's server listens on it.
    for url in create_scratch_database(tmp_path, "peers"):
        seen, here, there = run_coroutine(scenario(url))
    assert [json.loads(payload)["event"] for payload in seen] == [{"n": 2}]
    assert here == [{"n": 1}, {"n": 2}]
    assert there == [{"n": 2}]


def test_a_sender_that_cannot_reach_the_database_warns_once_until_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Streamed pieces that cannot be sent to the other processes (the database is gone) are
    one warning, not one for each piece (a hundred replies stream 500 a second), and a second
    says how many were not sent once sending works again."""
    if not is_postgres():
        pytest.skip("NOTIFY exists only on PostgreSQL")
    monkeypatch.setattr(live_postgres, "PEER_CHECK_S", 0.0)

    async def scenario(url: str) -> list[live.Event | None]:
        async with _two_apps(url) as (first, second):
            hub: live_postgres.PostgresHub = first.state.hub
            reachable = hub._sender_conninfo
            async with second.state.hub.subscribe("thread:7") as there:
                await _publish_streamed(hub, {"n": 1})
                await hub._close_sender()
                hub._sender_conninfo = f"postgresql://127.0.0.1:{free_port()}/gone"
                for n in (2, 3, 4):
                    await _publish_streamed(hub, {"n": n})
                hub._sender_conninfo = reachable
                await _publish_streamed(hub, {"n": 5})
                return [await there.get(timeout=5), await there.get(timeout=5)]

    for url in create_scratch_database(tmp_path, "sender"):
        with caplog.at_level(logging.WARNING, logger="app.live_postgres"):
            received = run_coroutine(scenario(url))
    assert received == [{"n": 1}, {"n": 5}]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("could not send live events to other processes: ")
    assert warnings[1] == "sending live events again; 3 were not sent"


async def _publish_streamed(hub: live_postgres.PostgresHub, event: live.Event) -> None:
    """Publish as a streaming reply does, and wait until the sender is done with it."""
    hub.publish_soon("thread:7", event)
    sender = hub._sender
    assert sender is not None
    await sender


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _stop_listening(hub: live_postgres.PostgresHub) -> None:
    listener = hub._listener
    assert listener is not None
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener


def test_subscribers_get_a_reset_after_the_listener_reconnects(database_url: str) -> None:
    if not is_postgres():
        pytest.skip("the LISTEN connection exists only on PostgreSQL")

    async def scenario() -> list[live.Event | None]:
        app = create_app(make_settings(database_url))
        hub: live_postgres.PostgresHub = app.state.hub
        db: Database = app.state.db
        await hub.start()
        try:
            async with hub.subscribe("project:5") as subscription:
                await asyncio.to_thread(_kill_listeners, db)
                reset = await subscription.get(timeout=10)
                await asyncio.to_thread(_commit_event, db, "project:5", {"type": "after"})
                return [reset, await subscription.get(timeout=5)]
        finally:
            await hub.stop()
            db.dispose()

    assert run_coroutine(scenario()) == [{"type": "reset"}, {"type": "after"}]


def test_another_apps_events_arrive_again_after_the_listener_reconnects(
    database_url: str,
) -> None:
    """The reconnected listener listens again: a second server process's events reach this
    one's subscribers after the connection was lost, not only this process's own."""
    if not is_postgres():
        pytest.skip("several processes share live updates only on PostgreSQL")

    async def scenario() -> list[live.Event | None]:
        async with (
            _two_apps(database_url) as (first, second),
            second.state.hub.subscribe("meeting:4") as subscription,
        ):
            await asyncio.to_thread(_kill_listeners, second.state.db)
            reset = await subscription.get(timeout=10)
            event = {"type": "vote", "item_id": 1}
            await asyncio.to_thread(_commit_event, first.state.db, "meeting:4", event)
            return [reset, await subscription.get(timeout=10)]

    assert run_coroutine(scenario()) == [{"type": "reset"}, {"type": "vote", "item_id": 1}]


def _kill_listeners(db: Database) -> None:
    with db.engine.begin() as connection:
        killed = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": live_postgres.LISTENER_APPLICATION_NAME},
        ).all()
    assert killed, "no listener connection to end"


def test_an_oversized_event_becomes_a_reset_of_its_channel() -> None:
    event = {"type": "decision", "blob": "x" * 9000}
    payload = live_postgres._payload("project:1", event, "origin")
    assert '"reset"' in payload
    assert len(payload.encode()) < 8000
