from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.api.params import PathId
from app.deps import CurrentUser, DbDep, ModelCallsDep, SessionDep, SettingsDep, Writer
from app.models import Thread
from app.schemas.debate import (
    MessageCreate,
    MessageRead,
    PostedMessage,
    ProjectModels,
    ThreadCreate,
    ThreadRead,
    ThreadSummary,
    UsageTotals,
    thread_read,
)
from app.services import debate_events, debate_stats, debates, replies
from app.services.debates import ThreadView

router = APIRouter(tags=["debates"])


def _read(view: ThreadView) -> ThreadRead:
    return thread_read(
        view.thread, design_visible=view.design_visible, messages=view.messages, stats=view.stats
    )


@router.post("/projects/{project_id}/threads", status_code=status.HTTP_201_CREATED)
def create_thread(
    project_id: PathId, body: ThreadCreate, session: SessionDep, user: Writer, settings: SettingsDep
) -> ThreadRead:
    """Start a debate: blind, failure_walk (an item), challenge (a decided item) or open."""
    view = debates.create_thread(
        session,
        project_id=project_id,
        data=body,
        actor=user,
        default_models=settings.debate_models,
        allowed_models=settings.selectable_models,
    )
    return _read(view)


@router.get("/projects/{project_id}/threads")
def list_threads(project_id: PathId, session: SessionDep, user: CurrentUser) -> list[ThreadSummary]:
    """Every debate of the project, oldest first."""
    found = debates.list_threads(session, project_id=project_id)
    return [ThreadSummary.model_validate(thread) for thread in found]


@router.get("/threads/{thread_id}")
def get_thread(thread_id: PathId, session: SessionDep, user: CurrentUser) -> ThreadRead:
    """A debate with every message, the exact prompts sent, and per-model flip counts."""
    return _read(debates.view_thread(session, thread_id=thread_id))


@router.post("/threads/{thread_id}/messages", status_code=status.HTTP_202_ACCEPTED)
def post_message(
    thread_id: PathId,
    body: MessageCreate,
    session: SessionDep,
    user: Writer,
    settings: SettingsDep,
    db: DbDep,
    calls: ModelCallsDep,
    background: BackgroundTasks,
) -> PostedMessage:
    """Say something in a debate; every model of the thread answers in the background."""
    posted = debates.post_message(
        session,
        thread_id=thread_id,
        data=body,
        actor=user,
        default_models=settings.debate_models,
    )
    background.add_task(replies.run_replies, db, calls, [reply.id for reply in posted.replies])
    return PostedMessage(
        user_message=MessageRead.model_validate(posted.user_message),
        replies=[MessageRead.model_validate(reply) for reply in posted.replies],
    )


def _readable_thread(thread_id: PathId, session: SessionDep, user: CurrentUser) -> Thread:
    # Resolved before the stream starts, so an unknown thread is a 404, not an empty stream.
    return debates.get_thread(session, thread_id)


@router.get("/threads/{thread_id}/events", response_class=EventSourceResponse)
async def thread_events(
    thread: Annotated[Thread, Depends(_readable_thread)], request: Request, db: DbDep
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: every message's current state first, then deltas and new states."""
    events = debate_events.thread_events(
        db=db, hub=request.app.state.hub, thread_id=thread.id, disconnected=request.is_disconnected
    )
    async for event in events:
        if event.message is not None:
            yield ServerSentEvent(event=event.kind, data=MessageRead.model_validate(event.message))
        else:
            yield ServerSentEvent(event=event.kind, data=event.data)


@router.get("/projects/{project_id}/models")
def project_models(project_id: PathId, session: SessionDep, user: CurrentUser) -> ProjectModels:
    """Per model: replies, errors, flips under pushback, capitulations, tokens and cost."""
    return debate_stats.project_models(session, project_id=project_id)


@router.get("/projects/{project_id}/usage")
def project_usage(project_id: PathId, session: SessionDep, user: CurrentUser) -> UsageTotals:
    """Tokens and cost of the project's debates, and what is left of its token budget."""
    return debate_stats.project_usage(session, project_id=project_id)
