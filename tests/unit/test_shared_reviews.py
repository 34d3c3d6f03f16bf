"""Open review pages of one project share each read of it, but never a read older than
the change they are answering."""

import asyncio
import time

from fastapi.testclient import TestClient

from app.db import Database
from app.services.review import Review
from app.web.streams import SharedReviews
from tests import factories
from tests.conftest import Actor, run_coroutine

VIEWER = {"user": None, "csrf_token": "token", "can_write": True, "is_admin": False}


class CountingReviews(SharedReviews):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0

    def _read(self, project_id: int) -> Review:
        self.reads += 1
        return super()._read(project_id)


def test_pages_answering_the_same_change_share_one_read_and_one_rendering(
    client: TestClient, member: Actor, db: Database
) -> None:
    project_id = factories.create_project(client, member)["id"]
    shared = CountingReviews(db)

    async def scenario() -> list[object]:
        changed_at = time.monotonic()
        pages = [shared.regions(project_id, VIEWER, False, changed_at) for _ in range(20)]
        return list(await asyncio.gather(*pages))

    parts = run_coroutine(scenario())
    assert shared.reads == 1
    assert all(found is parts[0] for found in parts)


def test_a_change_after_the_last_read_starts_a_new_one(
    client: TestClient, member: Actor, db: Database
) -> None:
    project_id = factories.create_project(client, member)["id"]
    shared = CountingReviews(db)

    async def scenario() -> None:
        await shared.regions(project_id, VIEWER, False, time.monotonic())
        await shared.regions(project_id, VIEWER, False, 0.0)  # a change the read includes
        await shared.regions(project_id, {**VIEWER, "csrf_token": "other"}, False, 0.0)
        await shared.regions(project_id, VIEWER, False, time.monotonic())  # a newer change

    run_coroutine(scenario())
    assert shared.reads == 2
