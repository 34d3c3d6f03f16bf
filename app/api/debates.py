import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from starlette.responses import Response, StreamingResponse

from app.api.params import PathId
from app.deps import (
    TOKEN_REFUSAL,
    CurrentUser,
    DbDep,
    ModelCallsDep,
    RequiredBearerDep,
    SessionDep,
    SettingsDep,
    Writer,
    api_stream_held,
    token_watch,
)
from app.models import Message, Thread
from app.problems import HTTP_TITLES, problem_body, problem_responses
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
# As FastAPI's own event streams: a comment after this long without an event.
KEEPALIVE_S = 15.0
SSE_MEDIA_TYPE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# What FastAPI documents for its own event streams.
SSE_CONTENT = {
    SSE_MEDIA_TYPE: {
        "itemSchema": {
            "type": "object",
            "properties": {
                "data": {"type": "string"},
                "event": {"type": "string"},
                "id": {"type": "string"},
                "retry": {"type": "integer", "minimum": 0},
            },
        }
    }
}


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


@router.get(
    "/threads/{thread_id}/events",
    response_class=StreamingResponse,
    dependencies=[Depends(api_stream_held)],
    responses={
        200: {"description": "Successful Response", "content": SSE_CONTENT},
        **problem_responses(429),
    },
)
async def thread_events(
    thread: Annotated[Thread, Depends(_readable_thread)],
    request: Request,
    db: DbDep,
    user: CurrentUser,
    credentials: RequiredBearerDep,
) -> Response:
    """Server-Sent Events: every message's current state first, then deltas and new states.

    A comment line (``: ping``) goes out after KEEPALIVE_S without an event. Once the token
    is revoked (or its user deactivated) an `unauthorized` event (problem+json) ends it.
    """
    events = debate_events.thread_events(
        db=db,
        hub=request.app.state.hub,
        thread_id=thread.id,
        disconnected=request.is_disconnected,
        idle_after_s=KEEPALIVE_S,
        watch=token_watch(db, user.id, credentials.credentials),
    )
    return StreamingResponse(_event_bytes(events), media_type=SSE_MEDIA_TYPE, headers=SSE_HEADERS)


async def _event_bytes(events: AsyncIterator[debate_events.ThreadEvent]) -> AsyncIterator[bytes]:
    """Each event written straight to the response. FastAPI's generator endpoints pass every
    event through two extra tasks and a timeout scope (for their keep-alive), which cost
    more than the event itself when a hundred replies stream at once."""
    async for event in events:
        if event.kind == debate_events.IDLE:
            yield KEEPALIVE_COMMENT
        elif event.kind == debate_events.ENDED:
            yield format_sse_event(event="unauthorized", data_str=_REVOKED)
        elif event.message is not None:
            # On a worker thread: its content is rendered from Markdown, a millisecond or
            # more that every stream relaying tokens on this event loop would wait out.
            data = await asyncio.to_thread(_message_json, event.message)
            yield format_sse_event(event=event.kind, data_str=data)
        else:
            yield format_sse_event(event=event.kind, data_str=json.dumps(event.data))


_REVOKED = json.dumps(problem_body(status=401, title=HTTP_TITLES[401], detail=TOKEN_REFUSAL))


def _message_json(message: Message) -> str:
    return MessageRead.model_validate(message).model_dump_json()


@router.get("/projects/{project_id}/models")
def project_models(project_id: PathId, session: SessionDep, user: CurrentUser) -> ProjectModels:
    """Per model: replies, errors, flips under pushback, capitulations, tokens and cost."""
    return debate_stats.project_models(session, project_id=project_id)


@router.get("/projects/{project_id}/usage")
def project_usage(project_id: PathId, session: SessionDep, user: CurrentUser) -> UsageTotals:
    """Tokens and cost of the project's debates, and what is left of its token budget."""
    return debate_stats.project_usage(session, project_id=project_id)
