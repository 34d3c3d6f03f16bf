"""A long-running process freezes what it holds for life and collects young objects less often."""

import gc
from collections.abc import Iterator

import pytest

from app import heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_keep_for_life_freezes_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    _young, middle, old = gc.get_threshold()
    kept = [[index] for index in range(1000)]  # containers the collector tracks
    assert all(gc.is_tracked(row) for row in kept)
    heap.keep_for_life()
    # Frozen: in no generation any more, so no collection walks them.
    walked = {id(tracked) for tracked in gc.get_objects()}
    assert not any(id(row) in walked for row in kept)
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (heap.YOUNG_COLLECTION_AFTER, middle, old)
