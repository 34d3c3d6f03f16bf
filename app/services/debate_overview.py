"""What the pages show about debates: a project's threads, one thread, the latest replies.

Read-only views over what the debate services store. The rules stay where they live:
whether the design is withheld is ``debates.design_visible``, flips are counted in
``debate_stats``; this module only gathers and groups.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Row, Text, bindparam, cast, select
from sqlalchemy.orm import Session, defer

from app.models import ChecklistItem, Message, Project, Thread, User
from app.models.enums import MessageRole, MessageStatus, ThreadMode
from app.schemas.debate import ModelStats, UsageTotals
from app.services import debate_stats, debates
from app.services.debates import ThreadView
from app.services.projects import get_project

LATEST_REPLIES = 6


@dataclass(frozen=True)
class Disclosure:
    """Whether prompts may carry the proposed architecture and data model now, and why."""

    blind_first: bool
    design_visible: bool
    # A blind round's own prompts never carry the design, whatever the project's state.
    blind_round: bool = False

    @property
    def withheld(self) -> bool:
        return self.blind_round or not self.design_visible

    @property
    def reason(self) -> str:
        if self.blind_round:
            return (
                "This is a blind round: its prompts never contain the proposed architecture "
                "or data model, so the model proposes designs of its own."
            )
        if not self.blind_first:
            return (
                "Blind-first is off for this project, so prompts include the proposed "
                "architecture and data model."
            )
        if self.design_visible:
            return (
                "A blind round has a complete reply with text, so prompts outside blind rounds "
                "now include the proposed architecture and data model (blind rounds never do)."
            )
        return (
            "Blind-first is on and no blind round has a complete reply with text yet (a failed "
            "or empty one does not count): until one does, no prompt contains the proposed "
            "architecture or data model. The model sees the problem and constraints only, so "
            "it proposes designs of its own first."
        )


class ThreadListing(NamedTuple):
    """A thread as a project's list shows it: plain columns, not a loaded Thread."""

    id: int
    title: str
    mode: str
    checklist_item_id: int | None
    models: tuple[str, ...]


class ThreadRow(NamedTuple):
    """One thread in a project's list, with what its replies did. Plain values only: the
    review page keeps each rendered row by them (app/web/rows.py)."""

    thread: ThreadListing
    item_title: str | None
    replies: int
    flips: int
    capitulations: int
    errors: int  # failed or interrupted


@dataclass(frozen=True)
class ProjectDebates:
    threads: list[ThreadRow]
    disclosure: Disclosure
    models: list[ModelStats]
    usage: UsageTotals


@dataclass(frozen=True)
class Turn:
    """The team's message of one turn and the replies to it, one per model."""

    number: int
    message: Message | None = None
    replies: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class ThreadPage:
    view: ThreadView
    project: Project
    item: ChecklistItem | None
    authors: dict[int, str]
    disclosure: Disclosure

    @property
    def turns(self) -> list[Turn]:
        return turns(self.view.messages)

    @property
    def writing(self) -> bool:
        """A reply is still being written (the thread takes no new message until it ends)."""
        return any(m.status == MessageStatus.STREAMING for m in self.view.messages)


@dataclass(frozen=True)
class ReplyRow:
    message: Message
    thread: Thread


def disclosure(session: Session, *, project_id: int) -> Disclosure:
    project = get_project(session, project_id)
    return Disclosure(project.blind_first, debates.design_visible(session, project))


def project_debates(
    session: Session, *, project_id: int, item_titles: dict[int, str] | None = None
) -> ProjectDebates:
    """Every thread of the project with its flip counts, per-model counts and usage.

    ``item_titles`` saves a statement when the caller has read the checklist already.
    """
    project = get_project(session, project_id)
    threads = session.connection().execute(_THREAD_LISTING, {"project_id": project.id})
    messages = debate_stats.project_messages(session, project.id)
    counts = debate_stats.thread_counts(messages)
    titles = item_titles if item_titles is not None else _item_titles(session, project.id)
    rows = [_thread_row(thread, titles, counts) for thread in _listings(threads)]
    return ProjectDebates(
        threads=rows,
        disclosure=Disclosure(project.blind_first, debates.design_visible(session, project)),
        models=debate_stats.model_stats(messages),
        usage=debate_stats.usage(project, messages),
    )


def _listings(rows: Iterable[Row[int, str, str, int | None, str | None]]) -> list[ThreadListing]:
    """Threads with their models parsed: a project's threads mostly name the same models,
    so each distinct list is parsed once rather than once per thread."""
    parsed: dict[str | None, tuple[str, ...]] = {}
    listings = []
    for thread_id, title, mode, item_id, stored in rows:
        models = parsed.get(stored)
        if models is None:
            models = parsed[stored] = tuple(json.loads(stored) or ()) if stored else ()
        listings.append(ThreadListing(thread_id, title, mode, item_id, models))
    return listings


def _thread_row(
    thread: ThreadListing, titles: dict[int, str], counts: dict[int, debate_stats.ThreadCounts]
) -> ThreadRow:
    count = counts.get(thread.id) or debate_stats.ThreadCounts()
    title = titles.get(thread.checklist_item_id) if thread.checklist_item_id else None
    return ThreadRow(thread, title, count.replies, count.flips, count.capitulations, count.errors)


# Built once and run on the connection: a list of a hundred threads costs several times
# more as loaded Thread objects than as the plain columns it shows. The models come as
# their JSON text, parsed by ``_listings``.
_THREAD_LISTING = (
    select(
        Thread.id, Thread.title, Thread.mode, Thread.checklist_item_id, cast(Thread.models, Text)
    )
    .where(Thread.project_id == bindparam("project_id"))
    .order_by(Thread.id)
)


def _item_titles(session: Session, project_id: int) -> dict[int, str]:
    rows = session.connection().execute(_ITEM_TITLES, {"project_id": project_id})
    return dict(rows.all())


# Built once and run on the connection, as _THREAD_LISTING: the review page reads it each
# time a debate changes.
_ITEM_TITLES = select(ChecklistItem.id, ChecklistItem.title).where(
    ChecklistItem.project_id == bindparam("project_id")
)


def thread_page(session: Session, *, thread_id: int) -> ThreadPage:
    """A thread with its messages, who wrote the team's messages, and its project and item."""
    view = debates.view_thread(session, thread_id=thread_id)
    project = get_project(session, view.thread.project_id)
    item_id = view.thread.checklist_item_id
    return ThreadPage(
        view=view,
        project=project,
        item=session.get(ChecklistItem, item_id) if item_id is not None else None,
        authors=author_names(session, view.messages),
        disclosure=Disclosure(
            project.blind_first,
            view.design_visible,
            blind_round=view.thread.mode == ThreadMode.BLIND,
        ),
    )


def author_names(session: Session, messages: Iterable[Message]) -> dict[int, str]:
    ids = {m.author_id for m in messages if m.author_id is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def turns(messages: Iterable[Message]) -> list[Turn]:
    """Messages grouped by turn, in order; a turn's replies keep the order they were made in."""
    grouped: dict[int, Turn] = {}
    for message in messages:
        turn = grouped.setdefault(message.turn, Turn(message.turn))
        if message.role == MessageRole.USER:
            grouped[message.turn] = Turn(turn.number, message, turn.replies)
        else:
            turn.replies.append(message)
    return [grouped[number] for number in sorted(grouped)]


def thread_ids(session: Session, *, project_id: int) -> list[int]:
    return [thread.id for thread in debates.list_threads(session, project_id=project_id)]


def latest_replies(
    session: Session, *, project_id: int, limit: int = LATEST_REPLIES
) -> list[ReplyRow]:
    """The project's newest model replies, newest first, with the thread each belongs to."""
    stmt = (
        select(Message, Thread)
        .join(Thread, Thread.id == Message.thread_id)
        .options(defer(Message.prompt, raiseload=True))
        .where(Thread.project_id == project_id, Message.role == MessageRole.ASSISTANT)
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return [ReplyRow(message, thread) for message, thread in session.execute(stmt).all()]
