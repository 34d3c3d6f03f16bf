"""Requests are admitted to match the pool, reads and writes apart: writes queued for the
database's write lock must not keep pages waiting behind them."""

import asyncio

from app.config import Settings
from app.db import Database
from tests.conftest import run_coroutine


def test_reads_and_writes_together_never_hold_more_than_the_pool(settings: Settings) -> None:
    db = Database(settings)
    try:
        assert db.read_slots > 0
        assert db.write_slots > 0
        assert db.read_slots + db.write_slots <= db.pool_capacity
    finally:
        db.dispose()


def test_a_read_is_admitted_while_every_write_slot_is_taken(settings: Settings) -> None:
    db = Database(settings)

    async def scenario() -> None:
        for _ in range(db.write_slots):
            await db.request_slots(write=True).acquire()
        one_write_too_many = asyncio.ensure_future(db.request_slots(write=True).acquire())
        await asyncio.sleep(0)
        assert not one_write_too_many.done()
        for _ in range(db.read_slots):  # every read slot is still free
            await asyncio.wait_for(db.request_slots().acquire(), 5)
        assert not one_write_too_many.done()
        db.request_slots(write=True).release()
        await asyncio.wait_for(one_write_too_many, 5)

    try:
        run_coroutine(scenario())
    finally:
        db.dispose()
