"""A thread's row on the review page counts its replies by the per-model rules."""

from itertools import product

from app.models.enums import MessageRole, MessageStatus
from app.services.debate_stats import ReplyColumns, model_stats, thread_counts

FLAGS = ([], ["position_changed"], ["position_changed", "capitulated"], ["pushback"])


def _reply(thread_id: int, turn: int, status: str, flags: list[str], model: str) -> ReplyColumns:
    return ReplyColumns(
        thread_id, turn, MessageRole.ASSISTANT, status, model, model, flags, None, 1, 1, None
    )


def test_thread_counts_are_the_sums_of_each_threads_model_rows() -> None:
    replies = [
        _reply(thread_id, turn, status, flags, model)
        for thread_id, turn, status, flags, model in product(
            (1, 2), (1, 2), list(MessageStatus), FLAGS, ("a", "b")
        )
        if (thread_id + turn + len(flags)) % 3
    ]
    counts = thread_counts(replies)
    assert set(counts) == {1, 2}
    for thread_id, found in counts.items():
        rows = model_stats(r for r in replies if r.thread_id == thread_id)
        assert found.replies == sum(row.replies for row in rows)
        assert found.flips == sum(row.flips for row in rows) > 0
        assert found.capitulations == sum(row.capitulations for row in rows) > 0
        assert found.errors == sum(row.errors + row.interrupted for row in rows) > 0


def test_the_teams_messages_are_not_replies() -> None:
    question = _reply(1, 1, MessageStatus.ERROR, ["position_changed"], "a")._replace(
        role=MessageRole.USER
    )
    assert thread_counts([question]) == {}
