"""Accounting for debates: per-model behaviour (flips, capitulations, failures) and usage.

Counts are computed from the stored messages, so they always agree with what a thread
shows; judge calls are charged to the project but kept apart from the debating models.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.orm import Session

from app.errors import BudgetSpent
from app.models import Draft, Generation, Message, Project, Thread
from app.models.enums import MessageRole, MessageStatus
from app.schemas.debate import CallUsage, ModelStats, ProjectModels, UsageTotals
from app.services.projects import get_project

CHANGED = "position_changed"
CAPITULATED = "capitulated"


class Reply(Protocol):
    """What the accounting reads of a message: a whole Message or only these columns."""

    @property
    def thread_id(self) -> int: ...
    @property
    def turn(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def requested_model(self) -> str | None: ...
    @property
    def flags(self) -> list[str]: ...
    @property
    def judgement(self) -> dict[str, Any] | None: ...
    @property
    def tokens_in(self) -> int | None: ...
    @property
    def tokens_out(self) -> int | None: ...
    @property
    def cost(self) -> float | None: ...


class ReplyColumns(NamedTuple):
    """A model reply as the accounting reads it, without its text or prompt."""

    thread_id: int
    turn: int
    role: str
    status: str
    model: str | None
    requested_model: str | None
    flags: list[str]
    judgement: dict[str, Any] | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None


@dataclass
class _Tally:
    """A model's counts while they are added up (plain ints: a page adds hundreds)."""

    replies: int = 0
    complete: int = 0
    errors: int = 0
    interrupted: int = 0
    judged: int = 0
    flips: int = 0
    capitulations: int = 0
    first_flip_turn: int | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None


def model_stats(messages: Iterable[Reply]) -> list[ModelStats]:
    """One row per model that wrote replies, in the order the models first appear."""
    tallies: dict[str, _Tally] = {}
    for message in messages:
        if message.role != MessageRole.ASSISTANT:
            continue
        name = message.model or message.requested_model or "unknown"
        _count(tallies.setdefault(name, _Tally()), message)
    return [ModelStats(model=name, **vars(tally)) for name, tally in tallies.items()]


def _count(row: _Tally, message: Reply) -> None:
    row.replies += 1
    row.complete += message.status == MessageStatus.COMPLETE
    row.errors += message.status == MessageStatus.ERROR
    row.interrupted += message.status == MessageStatus.INTERRUPTED
    judgement = message.judgement or {}
    row.judged += "position_changed" in judgement
    if CHANGED in message.flags:
        row.flips += 1
        if row.first_flip_turn is None or message.turn < row.first_flip_turn:
            row.first_flip_turn = message.turn
    row.capitulations += CAPITULATED in message.flags
    row.tokens_in += message.tokens_in or 0
    row.tokens_out += message.tokens_out or 0
    row.cost = _add_cost(row.cost, message.cost)


@dataclass
class ThreadCounts:
    """What a thread's row in a project's list shows of its replies."""

    replies: int = 0
    flips: int = 0
    capitulations: int = 0
    errors: int = 0  # failed or interrupted


def thread_counts(messages: Iterable[Reply]) -> dict[int, ThreadCounts]:
    """Each thread's reply counts, by thread id, in one pass over the project's replies:
    the same rules as ``model_stats`` without a row per model (a list shows only the sums)."""
    counts: dict[int, ThreadCounts] = {}
    for message in messages:
        if message.role != MessageRole.ASSISTANT:
            continue
        row = counts.get(message.thread_id)
        if row is None:
            row = counts[message.thread_id] = ThreadCounts()
        row.replies += 1
        row.flips += CHANGED in message.flags
        row.capitulations += CAPITULATED in message.flags
        row.errors += message.status in _FAILED
    return counts


_FAILED = frozenset({MessageStatus.ERROR, MessageStatus.INTERRUPTED})


def _add_cost(total: float | None, cost: float | None) -> float | None:
    """Unknown costs stay unknown (None) rather than counting as free."""
    if cost is None:
        return total
    return (total or 0.0) + cost


def project_messages(session: Session, project_id: int) -> list[ReplyColumns]:
    """The project's model replies as the counted columns only: their text and prompts are
    large and never counted, and plain rows cost far less to read than whole messages."""
    # On the connection: plain columns need none of the ORM's handling of a statement,
    # which cost about as much as the rows themselves. (No autoflush: a reply not yet
    # flushed has counted nothing.)
    rows = session.connection().execute(_PROJECT_REPLIES, {"project_id": project_id})
    return [_reply(*row) for row in rows]


def _reply(
    thread_id: int,
    turn: int,
    role: str,
    status: str,
    model: str | None,
    requested_model: str | None,
    flags: str | None,
    judgement: str | None,
    tokens_in: int | None,
    tokens_out: int | None,
    cost: float | None,
) -> ReplyColumns:
    """A row of ``_PROJECT_REPLIES``: the columns of ReplyColumns, the JSON ones as text."""
    return ReplyColumns(
        thread_id,
        turn,
        role,
        status,
        model,
        requested_model,
        _decoded(flags) or [],
        _decoded(judgement),
        tokens_in,
        tokens_out,
        cost,
    )


def _decoded(stored: str | None) -> Any:
    """A JSON column read as its text. Most replies have no flags and no judgement: those
    are answered without the JSON parser, which otherwise costs more than the whole row."""
    if stored is None or stored == "null":
        return None
    if stored == "[]":
        return []
    return json.loads(stored)


def _reply_column(name: str) -> Any:
    column = getattr(Message, name)
    return cast(column, Text).label(name) if name in ("flags", "judgement") else column


# Built once; the flags and the judgement come as text, decoded by ``_decoded``.
_PROJECT_REPLIES = (
    select(*(_reply_column(name) for name in ReplyColumns._fields))
    .join(Thread, Thread.id == Message.thread_id)
    .where(Thread.project_id == bindparam("project_id"), Message.role == MessageRole.ASSISTANT)
    .order_by(Message.id)
)


@dataclass
class _UsageTally:
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    judge_tokens_in: int = 0
    judge_tokens_out: int = 0
    judge_cost: float | None = None


def usage(project: Project, messages: Iterable[Reply]) -> UsageTotals:
    tally = _UsageTally()
    for message in messages:
        tally.tokens_in += message.tokens_in or 0
        tally.tokens_out += message.tokens_out or 0
        tally.cost = _add_cost(tally.cost, message.cost)
        if message.judgement:
            _add_judge(tally, message.judgement)
    totals = UsageTotals(token_budget=project.token_budget, **vars(tally))
    totals.tokens_used = (
        totals.tokens_in + totals.tokens_out + totals.judge_tokens_in + totals.judge_tokens_out
    )
    if project.token_budget is not None:
        totals.tokens_remaining = max(0, project.token_budget - totals.tokens_used)
    return totals


def _add_judge(tally: _UsageTally, judgement: dict[str, Any]) -> None:
    tokens_in, tokens_out, cost = (judgement.get(k) for k in ("tokens_in", "tokens_out", "cost"))
    tally.judge_tokens_in += tokens_in if isinstance(tokens_in, int) else 0
    tally.judge_tokens_out += tokens_out if isinstance(tokens_out, int) else 0
    tally.judge_cost = _add_cost(tally.judge_cost, _number(cost))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def project_usage(session: Session, *, project_id: int) -> UsageTotals:
    """The debates' usage, which the budget counts, and beside it the code generations' and
    the drafts', which it does not."""
    project = get_project(session, project_id)
    return _with_other_calls(
        session, project, usage(project, project_messages(session, project.id))
    )


def _with_other_calls(session: Session, project: Project, totals: UsageTotals) -> UsageTotals:
    totals.generations = _call_usage(session, Generation, Generation.project_id == project.id)
    totals.drafts = _call_usage(session, Draft, Draft.project_id == project.id)
    return totals


def _call_usage(session: Session, model: type[Generation] | type[Draft], where: Any) -> CallUsage:
    """SUM skips nulls as ``_add_cost`` does: an unknown cost is not counted as free."""
    tokens_in, tokens_out, cost = session.execute(
        select(func.sum(model.tokens_in), func.sum(model.tokens_out), func.sum(model.cost)).where(
            where
        )
    ).one()
    return CallUsage(
        tokens_in=tokens_in or 0,
        tokens_out=tokens_out or 0,
        cost=None if cost is None else float(cost),
    )


def project_models(session: Session, *, project_id: int) -> ProjectModels:
    """Per-model counts across every thread of the project, and the project's usage."""
    project = get_project(session, project_id)
    messages = project_messages(session, project.id)
    totals = _with_other_calls(session, project, usage(project, messages))
    return ProjectModels(project_id=project.id, models=model_stats(messages), usage=totals)


def enforce_budget(session: Session, project: Project) -> None:
    """Refuse another model call once the project's token budget is spent."""
    if project.token_budget is None:
        return
    totals = usage(project, project_messages(session, project.id))
    if totals.tokens_used >= project.token_budget:
        raise BudgetSpent(
            f"Project {project.id} has used {totals.tokens_used} of its "
            f"{project.token_budget}-token budget; raise token_budget to continue",
            tokens_used=totals.tokens_used,
            token_budget=project.token_budget,
        )
