"""Debate threads: blind-first prompts, one reply per model, pushback checked by a judge.

``build_prompt`` is the only place a prompt for a debate is assembled, so blind-first
(rule 3) holds for every mode: until the project has a completed blind round, no prompt
carries the architecture or the data model. The exact messages sent are stored on
each reply, so anyone can check.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.orm import Session, load_only

from app import live
from app.db import utcnow
from app.errors import Conflict, InvalidInput, ModelNotConfigured, NotFound
from app.models import ChecklistItem, Message, Project, Thread, User
from app.models.enums import MessageRole, MessageStatus, ThreadMode
from app.runners import left_behind, runner_of
from app.schemas.debate import MessageCreate, ModelStats, ThreadCreate
from app.services import audit, debate_stats, prompts
from app.services.catalog import CATEGORY_LABELS
from app.services.decisions import current_decision
from app.services.generation import HOW_TO_CONFIGURE
from app.services.projects import get_project

INTERRUPTED = "Interrupted: the server stopped while the model was still writing."
_CATEGORY_LABELS = {str(category): label for category, label in CATEGORY_LABELS.items()}


@dataclass(frozen=True)
class ProjectBrief:
    """What a prompt may say about the project; the design is None while it is withheld."""

    name: str
    problem: str
    constraints: str
    architecture: str | None
    data_model: str | None

    @property
    def design_visible(self) -> bool:
        return self.architecture is not None


@dataclass(frozen=True)
class ThreadView:
    thread: Thread
    messages: list[Message]
    design_visible: bool
    stats: list[ModelStats]


@dataclass(frozen=True)
class Posted:
    user_message: Message
    replies: list[Message]


def get_thread(session: Session, thread_id: int) -> Thread:
    thread = session.get(Thread, thread_id)
    if thread is None:
        raise NotFound(f"Thread {thread_id} does not exist")
    return thread


def list_threads(session: Session, *, project_id: int) -> list[Thread]:
    get_project(session, project_id)
    stmt = select(Thread).where(Thread.project_id == project_id).order_by(Thread.id)
    return list(session.scalars(stmt))


def thread_messages(session: Session, thread_id: int) -> list[Message]:
    stmt = select(Message).where(Message.thread_id == thread_id).order_by(Message.id)
    return list(session.scalars(stmt))


def _conversation_messages(session: Session, thread_id: int) -> list[Message]:
    """A thread's messages with only what a prompt and the posting rules read: each reply
    stores the whole prompt it was sent, so reading every column of a long thread read
    its history over and over, and a post did so once for the rules and once per model."""
    return list(session.scalars(_CONVERSATION, {"thread_id": thread_id}))


_CONVERSATION = (
    select(Message)
    .options(load_only(Message.role, Message.status, Message.content, Message.requested_model))
    .where(Message.thread_id == bindparam("thread_id"))
    .order_by(Message.id)
)


def get_message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"Message {message_id} does not exist")
    return message


def view_thread(session: Session, *, thread_id: int) -> ThreadView:
    """The thread, every message, whether prompts now show the design, and per-model counts."""
    thread = get_thread(session, thread_id)
    project = get_project(session, thread.project_id)
    messages = thread_messages(session, thread.id)
    return ThreadView(
        thread=thread,
        messages=messages,
        design_visible=design_visible(session, project),
        stats=debate_stats.model_stats(messages),
    )


# --- blind first ---------------------------------------------------------------------


def has_completed_blind_round(session: Session, project_id: int) -> bool:
    """A blind thread of the project has at least one complete model reply with text."""
    return bool(session.scalar(_COMPLETED_BLIND_ROUND, {"project_id": project_id}))


# Built once: every review page and prompt asks, and composing it cost more than running it.
# An empty reply now fails (app/llm.py), but one stored as complete before that must not
# count either: a round that produced no design is not a blind round.
_COMPLETED_BLIND_ROUND = select(
    exists()
    .where(Message.thread_id == Thread.id)
    .where(Thread.project_id == bindparam("project_id"))
    .where(Thread.mode == ThreadMode.BLIND)
    .where(Message.role == MessageRole.ASSISTANT)
    .where(Message.status == MessageStatus.COMPLETE)
    .where(func.trim(Message.content, " \t\r\n") != "")
)


def design_visible(session: Session, project: Project) -> bool:
    """Whether prompts outside blind threads may carry the architecture and data model."""
    return not project.blind_first or has_completed_blind_round(session, project.id)


def project_brief(project: Project, *, with_design: bool) -> ProjectBrief:
    return ProjectBrief(
        name=project.name,
        problem=project.problem,
        constraints=project.constraints,
        architecture=project.architecture if with_design else None,
        data_model=project.data_model if with_design else None,
    )


def build_prompt(
    session: Session, *, thread: Thread, project: Project, slot_model: str
) -> list[dict[str, Any]]:
    """The exact messages for the next reply of ``slot_model`` in ``thread``.

    Blind threads never see the design; other threads see it only once blind-first allows.
    """
    with_design = thread.mode != ThreadMode.BLIND and design_visible(session, project)
    context = {"brief": project_brief(project, with_design=with_design)}
    context.update(_mode_context(session, thread))
    turns = _conversation(_conversation_messages(session, thread.id), slot_model)
    request = turns[0]["content"] if turns else ""
    return [
        {"role": "system", "content": prompts.render(f"{thread.mode}.system.md", **context)},
        {
            "role": "user",
            "content": prompts.render(f"{thread.mode}.user.md", request=request, **context),
        },
        *turns[1:],
    ]


def _mode_context(session: Session, thread: Thread) -> dict[str, Any]:
    item_id = thread.checklist_item_id
    item = session.get(ChecklistItem, item_id) if item_id is not None else None
    decision = current_decision(session, item.id) if item is not None else None
    category = item.category if item is not None else ""
    label = _CATEGORY_LABELS.get(category, category)
    return {"item": item, "category": category, "category_label": label, "decision": decision}


def _conversation(messages: list[Message], slot_model: str) -> list[dict[str, Any]]:
    """The team's messages and this model's finished replies; each model debates on its own."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == MessageRole.USER:
            turns.append({"role": "user", "content": message.content})
        elif _is_position(message) and message.requested_model == slot_model:
            turns.append({"role": "assistant", "content": message.content})
    return turns


def _is_position(message: Message) -> bool:
    return (
        message.role == MessageRole.ASSISTANT
        and message.status == MessageStatus.COMPLETE
        and bool(message.content)
    )


# --- threads and messages ------------------------------------------------------------


def create_thread(
    session: Session,
    *,
    project_id: int,
    data: ThreadCreate,
    actor: User,
    default_models: list[str],
    allowed_models: list[str],
) -> ThreadView:
    """A new debate; failure walks and challenges are about one checklist item."""
    project = get_project(session, project_id)
    item = _thread_item(session, project, data)
    thread = Thread(
        project_id=project.id,
        checklist_item_id=item.id if item is not None else None,
        mode=data.mode,
        models=_chosen_models(data.models, default_models, allowed_models),
        title=data.title or _default_title(data.mode, item),
        created_by_id=actor.id,
    )
    session.add(thread)
    session.flush()
    _audit(session, actor, thread, "thread.created", thread.id)
    live.announce(session, f"project:{project.id}", {"type": "thread", "id": thread.id})
    return view_thread(session, thread_id=thread.id)


def start_thread(
    session: Session,
    *,
    project_id: int,
    data: ThreadCreate,
    opening: MessageCreate,
    actor: User,
    default_models: list[str],
    allowed_models: list[str],
) -> Posted:
    """A new debate and its opening message in one unit: the replies are then to be written."""
    view = create_thread(
        session,
        project_id=project_id,
        data=data,
        actor=actor,
        default_models=default_models,
        allowed_models=allowed_models,
    )
    return post_message(
        session,
        thread_id=view.thread.id,
        data=opening,
        actor=actor,
        default_models=default_models,
    )


def _audit(
    session: Session, actor: User, thread: Thread, action: str, entity_id: int, **after: Any
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type=action.split(".")[0],
        entity_id=entity_id,
        project_id=thread.project_id,
        after={"thread_id": thread.id, "mode": thread.mode, "models": thread.models, **after},
    )


def _thread_item(session: Session, project: Project, data: ThreadCreate) -> ChecklistItem | None:
    needs_item = data.mode in (ThreadMode.FAILURE_WALK, ThreadMode.CHALLENGE)
    if data.checklist_item_id is None:
        if needs_item:
            raise InvalidInput(
                f"A {data.mode} thread needs a checklist_item_id", field="checklist_item_id"
            )
        return None
    item = session.get(ChecklistItem, data.checklist_item_id)
    if item is None or item.project_id != project.id:
        raise InvalidInput(
            f"Checklist item {data.checklist_item_id} is not part of project {project.id}",
            field="checklist_item_id",
        )
    if data.mode == ThreadMode.CHALLENGE and current_decision(session, item.id) is None:
        raise Conflict(f"Item {item.id} has no decision yet, so there is nothing to challenge")
    return item


def _default_title(mode: ThreadMode, item: ChecklistItem | None) -> str:
    names = {
        ThreadMode.BLIND: "Blind round",
        ThreadMode.FAILURE_WALK: "Failure walk",
        ThreadMode.CHALLENGE: "Devil's advocate",
        ThreadMode.OPEN: "Discussion",
    }
    return f"{names[mode]}: {item.title}" if item is not None else names[mode]


def _chosen_models(
    asked: list[str] | None, default_models: list[str], allowed_models: list[str]
) -> list[str]:
    if not asked:
        return _unique(default_models)
    unknown = [model for model in asked if model not in allowed_models]
    if unknown:
        choices = ", ".join(allowed_models) or "none (set DESIGNGATE_MODEL or DESIGNGATE_MODELS)"
        raise InvalidInput(
            f"Not configured on this server: {', '.join(unknown)}; choose from {choices}",
            field="models",
        )
    return _unique(asked)


def _unique(models: list[str]) -> list[str]:
    return list(dict.fromkeys(m.strip() for m in models if m.strip()))


def post_message(
    session: Session,
    *,
    thread_id: int,
    data: MessageCreate,
    actor: User,
    default_models: list[str],
) -> Posted:
    """Store the team's message and one streaming reply per model, each with its exact prompt."""
    # The row lock (PostgreSQL) and the immediate write transaction (SQLite) keep two
    # posts to one thread from interleaving their turns.
    thread = session.get(Thread, thread_id, with_for_update=True)
    if thread is None:
        raise NotFound(f"Thread {thread_id} does not exist")
    project = get_project(session, thread.project_id)
    models = _models_for(thread, default_models)
    _check_can_post(session, thread, data)
    debate_stats.enforce_budget(session, project)
    user_message = _add_user_message(session, thread, data, actor)
    replies = [_add_reply(session, thread, project, user_message, model) for model in models]
    _audit(session, actor, thread, "message.posted", user_message.id, pushback=data.pushback)
    for message in (user_message, *replies):
        _announce_created(session, message)
    return Posted(user_message, replies)


def _models_for(thread: Thread, default_models: list[str]) -> list[str]:
    if not thread.models:
        thread.models = _unique(default_models)
    if not thread.models:
        raise ModelNotConfigured(HOW_TO_CONFIGURE)
    return list(thread.models)


def _check_can_post(session: Session, thread: Thread, data: MessageCreate) -> None:
    messages = _conversation_messages(session, thread.id)
    if any(m.status == MessageStatus.STREAMING for m in messages):
        raise Conflict("A reply in this thread is still being written; wait for it to finish")
    if data.pushback and not any(_is_position(m) for m in messages):
        raise Conflict("There is no finished model reply in this thread to push back on")


def _add_user_message(
    session: Session, thread: Thread, data: MessageCreate, actor: User
) -> Message:
    last_turn = session.scalar(
        select(func.coalesce(func.max(Message.turn), 0)).where(Message.thread_id == thread.id)
    )
    message = Message(
        thread_id=thread.id,
        turn=(last_turn or 0) + 1,
        role=MessageRole.USER,
        content=data.content,
        status=MessageStatus.COMPLETE,
        author_id=actor.id,
        pushback=data.pushback,
        flags=["pushback"] if data.pushback else [],
    )
    session.add(message)
    session.flush()
    return message


def _add_reply(
    session: Session, thread: Thread, project: Project, asked: Message, model: str
) -> Message:
    reply = Message(
        thread_id=thread.id,
        turn=asked.turn,
        role=MessageRole.ASSISTANT,
        content="",
        status=MessageStatus.STREAMING,
        runner=runner_of(session),
        model=model,
        requested_model=model,
        reply_to_id=asked.id,
        prompt=build_prompt(session, thread=thread, project=project, slot_model=model),
    )
    session.add(reply)
    session.flush()
    return reply


def _announce_created(session: Session, message: Message) -> None:
    event = {"type": "message", "id": message.id, "role": message.role, "status": message.status}
    live.announce(session, f"thread:{message.thread_id}", event)


# Replies a model is still writing, or that wait for their first words.
STREAMING_REPLY = Message.status == MessageStatus.STREAMING


def mark_interrupted(session: Session, *, runners: Collection[int] | None = None) -> int:
    """Replies left streaming by a server that is gone will never finish: at start-up all
    of them, while serving those of ``runners``. Each is announced on its thread, so a page
    that shows it, in this process or another, stops waiting for it."""
    marked = session.execute(
        update(Message)
        .where(left_behind(session, Message.runner, STREAMING_REPLY, only=runners))
        .values(
            status=MessageStatus.INTERRUPTED,
            error=INTERRUPTED,
            error_kind="interrupted",
            updated_at=utcnow(),
        )
        .returning(Message.id, Message.thread_id)
    ).all()
    for reply_id, thread_id in marked:
        event = {"type": "message", "id": reply_id, "status": MessageStatus.INTERRUPTED}
        live.announce(session, f"thread:{thread_id}", event)
    return len(marked)
