"""Server-sent events for live pages: the review page, a generation, a meeting.

Each stream subscribes to the live hub first and then sends the full current state,
so nothing published between the page load (or a reconnect) and the subscription is
missed. After that it re-renders on each event; a ``reset`` (the hub may have
missed events) is answered the same way, with everything.
"""

import asyncio
import contextlib
import html
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.sse import format_sse_event
from starlette.responses import Response, StreamingResponse

from app import live
from app.api.params import PathId
from app.db import Database
from app.deps import DbDep, SessionDep
from app.models.enums import GenerationStatus
from app.services import debate_overview, meetings, projects, review
from app.services import generation as generation_service
from app.services.debate_events import UNSAVED
from app.services.review import Review
from app.shared_reads import failed, per_database
from app.stream_access import AccessWatch, without_account_events
from app.web import regions
from app.web.deps import (
    LoginRequired,
    SignedIn,
    WebUser,
    page_stream_held,
    readmit,
    require_setup_done,
    return_path,
)
from app.web.errors import signed_out_event
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


def role_notice(context: dict[str, Any]) -> bytes:
    """The page's notice that its user's role changed: its live regions follow the new role,
    but the forms already on it do not (they may hold typed text)."""
    return event_bytes("role-notice", render_text("_role_notice.html", context))


def event_stream(body: AsyncIterator[bytes]) -> Response:
    """A text/event-stream response that proxies do not buffer."""
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)


def _changed(sent: dict[str, str], parts: regions.Regions) -> regions.Regions:
    """Only regions that differ from what this connection last sent: an unchanged region
    swapped again would make screen readers announce it again."""
    fresh = [(rid, html_text) for rid, html_text in parts if sent.get(rid) != html_text]
    sent.update(fresh)
    return fresh


class SessionWatch:
    """Whether the cookie session of a live page's stream still holds (see
    app/stream_access.py), and what the page is told once it has ended."""

    def __init__(self, request: Request, db: Database, context: dict[str, Any]) -> None:
        self.request = request
        self.context = context
        signed_in: SignedIn = request.state.user
        self.access = AccessWatch(signed_in.id, lambda: readmit(request, db) is not None)
        self.channel = self.access.channel

    async def holds(self) -> bool:
        return await self.access.holds()

    async def holds_after(self, events: list[live.Event] | None) -> bool:
        return await self.access.holds_after(events or [])

    def viewer_changed(self) -> bool:
        """After a check: whether the role changed (so the forms shown do); the stream's
        context follows it."""
        fresh = base_context(self.request)
        if _viewer(fresh) == _viewer(self.context):
            return False
        self.context.update(fresh)
        return True

    def ended(self) -> bytes:
        return signed_out_event(LoginRequired(return_path(self.request)))


def _read(db: Database, work: Callable[[Any], Any]) -> Any:
    with db.transaction(write=False) as session:
        return work(session)


@router.get("/projects/{project_id}/events", dependencies=[Depends(page_stream_held)])
def project_events(
    request: Request, project_id: PathId, session: SessionDep, user: WebUser, db: DbDep
) -> Response:
    """Live regions of the review page: gate, categories, item states, meeting banner."""
    projects.get_project(session, project_id)
    context = base_context(request)
    hub: live.LocalHub = request.app.state.hub
    shared = shared_reviews(db)
    watch = SessionWatch(request, db, context)

    async def body() -> AsyncIterator[bytes]:
        sent: dict[str, str] = {}
        async with hub.subscribe(f"project:{project_id}", watch.channel) as subscription:
            fresh_after, design = time.monotonic(), False
            try:
                # A sign-out between the request's check and the subscription announced
                # nothing here.
                if not await watch.holds():
                    raise SessionEnded()
                while True:
                    parts = await shared.regions(project_id, context, design, fresh_after)
                    for rid, fragment in _changed(sent, parts):
                        yield event_bytes(rid, fragment)
                    items = await _relevant_events(subscription, watch)
                    while items is None:
                        yield b": keep-alive\n\n"
                        items = await _relevant_events(subscription, watch)
                    if VIEWER_CHANGED in items:
                        yield role_notice(context)
                    # Everything queued so far is answered by one read that starts after it.
                    fresh_after = subscription.delivered_at
                    design = any(item.get("type") in EVERYTHING for item in items)
            except SessionEnded:
                yield watch.ended()

    return event_stream(body())


class SessionEnded(Exception):
    """The session of a live page's stream has ended: the page is told, the stream ends."""


# A role changed: every region is rendered again for it, as after a reset.
VIEWER_CHANGED: live.Event = {"type": "viewer"}
EVERYTHING = frozenset({"project", live.RESET, "viewer"})


async def _relevant_events(
    subscription: live.Subscription, watch: SessionWatch
) -> list[live.Event] | None:
    """The next events a page is shown (an account change that leaves its session and role
    as they were is not one); None after a quiet ``KEEPALIVE_S``."""
    while True:
        items = await _next_events(subscription)
        if not await watch.holds_after(items):
            raise SessionEnded()
        if items is None:
            return None
        relayed = without_account_events(items)
        if watch.viewer_changed():
            relayed.append(VIEWER_CHANGED)
        if relayed:
            return relayed


async def _next_events(
    subscription: live.Subscription, timeout: float = KEEPALIVE_S
) -> list[live.Event] | None:
    """The next event and any queued behind it; None after a quiet ``timeout``."""
    first = await subscription.get(timeout=timeout)
    if first is None:
        return None
    return [first, *subscription.take_waiting()]


@dataclass
class _SharedRead:
    started: float
    review: "asyncio.Future[Review]"
    renders: "dict[tuple[object, ...], asyncio.Future[regions.Regions]]"


class SharedReviews:
    """One read of a project's review, and one rendering per kind of viewer, for all of
    its open review pages at once: a decision seen by fifty pages costs one read, not
    fifty. A page joins a read only if it started after the page's latest event arrived
    (so it includes that change); otherwise it starts a new one."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.latest: dict[int, _SharedRead] = {}

    async def regions(
        self, project_id: int, context: dict[str, Any], design: bool, fresh_after: float
    ) -> regions.Regions:
        entry = self.latest.get(project_id)
        if entry is None or entry.started < fresh_after or failed(entry.review):
            started = time.monotonic()
            read = asyncio.ensure_future(asyncio.to_thread(self._read, project_id))
            entry = self.latest[project_id] = _SharedRead(started, read, {})
        found = await asyncio.shield(entry.review)
        key = (design, *_viewer(context))
        render = entry.renders.get(key)
        if render is None or failed(render):
            render = asyncio.ensure_future(
                asyncio.to_thread(regions.review_regions, found, context, design=design)
            )
            entry.renders[key] = render
        parts: regions.Regions = await asyncio.shield(render)
        return parts

    def _read(self, project_id: int) -> Review:
        with self.db.reads() as session:
            return review.review(session, project_id=project_id)


def _viewer(context: dict[str, Any]) -> tuple[object, ...]:
    """What the regions depend on besides the project: who looks, and their form token."""
    user = context.get("user")
    return (
        getattr(user, "id", None),
        context.get("csrf_token"),
        context.get("can_write"),
        context.get("is_admin"),
    )


shared_reviews = per_database(SharedReviews)


@router.get("/generations/{generation_id}/events", dependencies=[Depends(page_stream_held)])
def generation_events(
    request: Request, generation_id: PathId, session: SessionDep, user: WebUser, db: DbDep
) -> Response:
    """The generated text as it grows: a snapshot, then each new piece, then the outcome."""
    generation_service.get_generation(session, generation_id)
    hub: live.LocalHub = request.app.state.hub

    def state(s: Any) -> tuple[str, str, str | None]:
        found = generation_service.get_generation(s, generation_id)
        return found.status, found.content, found.error

    watch = SessionWatch(request, db, base_context(request))

    async def body() -> AsyncIterator[bytes]:
        channels = (f"generation:{generation_id}", watch.channel)
        async with hub.subscribe(*channels) as subscription:
            if not await watch.holds():
                yield watch.ended()
                return
            status, content, error = await asyncio.to_thread(_read, db, state)
            yield event_bytes("snapshot", html.escape(content))
            sent = len(content)
            while status not in FINISHED:
                found = await _next_events(subscription)
                if not await watch.holds_after(found):
                    yield watch.ended()
                    return
                if found is None:
                    yield b": keep-alive\n\n"
                    continue
                if not without_account_events(found):
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


@router.get("/meetings/{meeting_id}/events", dependencies=[Depends(page_stream_held)])
def meeting_events(
    request: Request,
    meeting_id: PathId,
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

    watch = SessionWatch(request, db, context)

    async def body() -> AsyncIterator[bytes]:
        channels = (f"meeting:{meeting_id}", f"project:{project_id}", watch.channel)
        async with ProjectFeed(hub, db, project_id, *channels) as feed:
            if not await watch.holds():
                yield watch.ended()
                return
            since = await asyncio.to_thread(arrive)
            try:
                async for chunk in _meeting_updates(db, feed, watch, render, render_replies):
                    yield chunk
            finally:
                if since is not None:
                    await asyncio.shield(asyncio.to_thread(leave, since))

    return event_stream(body())


MeetingRender = Callable[[Any], tuple[regions.Regions, int | None, bool]]


async def _meeting_updates(
    db: Database,
    feed: "ProjectFeed",
    watch: SessionWatch,
    render: MeetingRender,
    render_replies: MeetingRender,
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
        if not await watch.holds_after(batch):
            yield watch.ended()
            return
        if batch is None:
            yield b": keep-alive\n\n"
            parts = []
            continue
        if watch.viewer_changed():
            batch.append({"type": live.RESET})  # every part again, for the new role
        batch = without_account_events(batch)
        if not batch:
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
            found = await _next_events(self._subscription, timeout)
            if found is None:
                return None
            # Text a model has not saved yet: the saved event a moment later covers it,
            # and re-rendering on every token would cost a read per token per viewer.
            items = [item for item in found if not item.get(UNSAVED)]
        if any(item.get("type") == "thread" for item in items):
            await self._renew()
        return items
