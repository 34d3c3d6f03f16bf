"""What the review page counts of a project's replies: each thread's row by the per-model
rules, from the replies' columns as they are stored."""

from itertools import product

from app.db import Database
from app.models import Message, Project, Thread
from app.models.enums import MessageRole, MessageStatus
from app.services.debate_stats import ReplyColumns, model_stats, project_messages, thread_counts

FLAGS: tuple[list[str], ...] = (
    [],
    ["position_changed"],
    ["position_changed", "capitulated"],
    ["pushback"],
)


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


def test_the_project_replies_read_back_their_flags_and_judgement_as_stored(db: Database) -> None:
    judgement = {"position_changed": True, "tokens_in": 7, "tokens_out": 2, "cost": 0.5}
    stored = [([], None), (["position_changed", "capitulated"], judgement), (["pushback"], {})]
    with db.transaction() as session:
        project = Project(name="p", problem="p")
        session.add(project)
        session.flush()
        thread = Thread(project_id=project.id, mode="open", models=["m"], title="t")
        session.add(thread)
        session.flush()
        for turn, (flags, verdict) in enumerate(stored):
            session.add(
                Message(
                    thread_id=thread.id,
                    turn=turn,
                    role=MessageRole.ASSISTANT,
                    status=MessageStatus.COMPLETE,
                    flags=flags,
                    judgement=verdict,
                )
            )
        session.add(Message(thread_id=thread.id, turn=3, role=MessageRole.USER, status="complete"))
    with db.transaction() as session:
        read = project_messages(session, project.id)
    assert [(reply.flags, reply.judgement) for reply in read] == stored
