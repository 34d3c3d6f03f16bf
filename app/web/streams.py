"""Server-sent events for live pages: the review page, a generation, a meeting.

Each stream subscribes to the live hub first and then sends the full current state,
so nothing published between the page load (or a reconnect) and the subscription is
missed. After that it re-renders on each event; a ``reset`` (the hub may have
missed events) is answered the same way, with everything.
"""

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.sse import format_sse_event
from starlette.responses import Response, StreamingResponse

from app import live
from app.db import Database
from app.deps import DbDep, SessionDep
from app.models.enums import GenerationStatus
from app.services import debate_overview, meetings, projects, review
from app.services import generation as generation_service
from app.services.debate_events import UNSAVED
from app.web import regions
from app.web.deps import WebUser, require_setup_done
from app.web.templating import base_context, render_text

router = APIRouter(dependencies=[Depends(require_setup_done)])
KEEPALIVE_S = 15.0
FINISHED = {GenerationStatus.COMPLETE, GenerationStatus.ERROR}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Events of thread:{id} channels (a reply written, a verdict stored), not of the meeting.
THREAD_EVENTS = frozenset({"message", "delta"})


def event_bytes(name: str, data: str) -> bytes:
    """One server-sent event."""
    return format_sse_event(event=name, data_str=data)


def event_stream(body: AsyncIterator[bytes]) -> Response:
    """A text/event-stream response that proxies do not buffer."""
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)


async def _events(subscription: live.Subscription) -> AsyncIterator[live.Event | None]:
    """Hub events; None after each quiet stretch, so the caller can send a keep-alive."""
    while True:
        yield await subscription.get(timeout=KEEPALIVE_S)


def _changed(sent: dict[str, str], parts: regions.Regions) -> regions.Regions:
    """Only regions that differ from what this connection last sent: an unchanged region
    swapped again would make screen readers announce it again."""
    fresh = [(rid, html_text) for rid, html_text in parts if sent.get(rid) != html_text]
    sent.update(fresh)
    return fresh


def _read(db: Database, work: Callable[[Any], Any]) -> Any:
    with db.transaction(write=False) as session:
        return work(session)


@router.get("/projects/{project_id}/events")
def project_events(
    request: Request, project_id: int, session: SessionDep, user: WebUser, db: DbDep
) -> Response:
    """Live regions of the review page: gate, categories, item states, meeting banner."""
    projects.get_project(session, project_id)
    context = base_context(request)
    hub: live.LocalHub = request.app.state.hub

    def render(design: bool) -> regions.Regions:
        def work(s: Any) -> regions.Regions:
            found = review.review(s, project_id=project_id)
            return regions.review_regions(found, context, design=design)

        result: regions.Regions = _read(db, work)
        return result

    async def body() -> AsyncIterator[bytes]:
        sent: dict[str, str] = {}
        async with hub.subscribe(f"project:{project_id}") as subscription:
            for rid, fragment in _changed(sent, await asyncio.to_thread(render, False)):
                yield event_bytes(rid, fragment)
            async for item in _events(subscription):
                if item is None:
                    yield b": keep-alive\n\n"
                    continue
                design = item.get("type") in {"project", live.RESET}
                for rid, fragment in _changed(sent, await asyncio.to_thread(render, design)):
                    yield event_bytes(rid, fragment)

    return event_stream(body())


@router.get("/generations/{generation_id}/events")
def generation_events(
    request: Request, generation_id: int, session: SessionDep, user: WebUser, db: DbDep
) -> Response:
    """The generated text as it grows: a snapshot, then each new piece, then the outcome."""
    generation_service.get_generation(session, generation_id)
    hub: live.LocalHub = request.app.state.hub

    def state(s: Any) -> tuple[str, str, str | None]:
        found = generation_service.get_generation(s, generation_id)
        return found.status, found.content, found.error

    async def body() -> AsyncIterator[bytes]:
        async with hub.subscribe(f"generation:{generation_id}") as subscription:
            status, content, error = await asyncio.to_thread(_read, db, state)
            yield event_bytes("snapshot", html.escape(content))
            sent = len(content)
            while status not in FINISHED:
                if await subscription.get(timeout=KEEPALIVE_S) is None:
                    yield b": keep-alive\n\n"
                    continue
                status, content, error = await asyncio.to_thread(_read, db, state)
                if len(content) > sent:
                    yield event_bytes("chunk", html.escape(content[sent:]))
                    sent = len(content)
            yield event_bytes("done", _outcome(status, content, error))

    return event_stream(body())


def _outcome(status: str, content: str, error: str | None) -> str:
    return render_text(
        "_generation_status.html", {"status": status, "length": len(content), "error": error}
    )


@router.get("/meetings/{meeting_id}/events")
def meeting_events(
    request: Request,
    meeting_id: int,
    session: SessionDep,
    user: WebUser,
    db: DbDep,
    item: int | None = None,
) -> Response:
    """Live meeting: attendees, agenda, the current item with its votes, the gate, then minutes."""
    meeting = meetings.get_meeting(session, meeting_id)
    project_id = meeting.project_id
    context = base_context(request)
    hub: live.LocalHub = request.app.state.hub
    shown_item = item

    def render(s: Any) -> tuple[regions.Regions, int | None, bool]:
        nonlocal shown_item
        current = meetings.get_meeting(s, meeting_id)
        if current.ended_at is not None:
            ended = render_text("_meeting_ended.html", {**context, "meeting": current})
            return [("meeting-body", ended)], None, True
        found = review.review(s, project_id=project_id)
        changed = current.current_item_id != shown_item
        shown_item = current.current_item_id
        parts = regions.meeting_regions(s, current, found, context, form=changed)
        return parts, current.current_item_id, False

    def arrive() -> Any:
        with db.transaction() as s:
            return meetings.connected(s, meeting_id=meeting_id, user_id=user.id)

    def leave(since: Any) -> None:
        with db.transaction() as s:
            meetings.disconnected(s, meeting_id=meeting_id, user_id=user.id, since=since)

    def render_replies(s: Any) -> tuple[regions.Regions, int | None, bool]:
        return [regions.meeting_replies(s, project_id, context)], shown_item, False

    async def body() -> AsyncIterator[bytes]:
        channels = (f"meeting:{meeting_id}", f"project:{project_id}")
        async with ProjectFeed(hub, db, project_id, *channels) as feed:
            since = await asyncio.to_thread(arrive)
            try:
                async for chunk in _meeting_updates(db, feed, render, render_replies):
                    yield chunk
            finally:
                if since is not None:
                    await asyncio.shield(asyncio.to_thread(leave, since))

    return event_stream(body())


MeetingRender = Callable[[Any], tuple[regions.Regions, int | None, bool]]


async def _meeting_updates(
    db: Database, feed: "ProjectFeed", render: MeetingRender, render_replies: MeetingRender
) -> AsyncIterator[bytes]:
    sent: dict[str, str] = {}
    parts, _item, ended = await asyncio.to_thread(_read, db, render)
    while True:
        for rid, fragment in _changed(sent, parts):
            yield event_bytes(rid, fragment)
        if ended:
            yield event_bytes("closed", "")
            return
        batch = await feed.batch(timeout=KEEPALIVE_S)
        if batch is None:
            yield b": keep-alive\n\n"
            parts = []
            continue
        # A model writing changes only the replies; the rest of the meeting need not be re-read.
        replies_only = all(item.get("type") in THREAD_EVENTS for item in batch)
        chosen = render_replies if replies_only else render
        parts, _item, ended = await asyncio.to_thread(_read, db, chosen)


class ProjectFeed:
    """Hub events of some channels and of every debate thread of a project.

    A thread started later (a ``thread`` event on the project channel) is followed by
    renewing the subscription before that event is handed on, so the re-read that the
    caller makes next also covers anything the old subscription had not delivered.
    """

    def __init__(self, hub: live.LocalHub, db: Database, project_id: int, *channels: str) -> None:
        self.hub = hub
        self.db = db
        self.project_id = project_id
        self.channels = channels
        self._stack: contextlib.AsyncExitStack | None = None
        self._subscription: live.Subscription | None = None

    async def __aenter__(self) -> "ProjectFeed":
        await self._renew()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stack is not None:
            await self._stack.aclose()

    async def _renew(self) -> None:
        def thread_ids(s: Any) -> list[int]:
            return debate_overview.thread_ids(s, project_id=self.project_id)

        ids: list[int] = await asyncio.to_thread(_read, self.db, thread_ids)
        stack = contextlib.AsyncExitStack()
        threads = [f"thread:{thread_id}" for thread_id in ids]
        self._subscription = await stack.enter_async_context(
            self.hub.subscribe(*self.channels, *threads)
        )
        previous, self._stack = self._stack, stack
        if previous is not None:
            await previous.aclose()

    async def batch(self, timeout: float) -> list[live.Event] | None:
        """The next event and any already waiting behind it; None after a quiet ``timeout``."""
        assert self._subscription is not None
        items: list[live.Event] = []
        while not items:
            first = await self._subscription.get(timeout=timeout)
            if first is None:
                return None
            items = [first]
            while not self._subscription.queue.empty():
                items.append(self._subscription.queue.get_nowait())
            # Text a model has not saved yet: the saved event a moment later covers it,
            # and re-rendering on every token would cost a read per token per viewer.
            items = [item for item in items if not item.get(UNSAVED)]
        if any(item.get("type") == "thread" for item in items):
            await self._renew()
        return items
