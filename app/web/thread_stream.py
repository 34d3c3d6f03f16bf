"""The live thread page, over the same snapshot-then-changes stream the API sends.

Every change goes out as htmx out-of-band swaps in one event named ``update``: the first
snapshot replaces the page's turns as a whole (unless it is exactly what the page shows),
a new message is appended to its turn, streamed text is appended to its reply as escaped
text, and a finished or judged reply has its header, body and verdict rendered again
(its "What the model saw" disclosure stays as the reader left it).
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup, escape
from starlette.responses import Response

from app.api.params import PathId
from app.db import Database
from app.deps import DbDep, SessionDep
from app.models import Message
from app.models.enums import MessageRole
from app.services import debate_events, debate_overview, debates
from app.services.debate_events import ENDED, IDLE, SYNCED, ThreadEvent
from app.services.debate_overview import ThreadPage, Turn
from app.stream_access import ACCOUNT
from app.web.debates import digest
from app.web.deps import WebUser, page_stream_held, require_setup_done
from app.web.streams import KEEPALIVE_S, SessionWatch, event_bytes, event_stream, role_notice
from app.web.templating import base_context, render_text

router = APIRouter(dependencies=[Depends(require_setup_done)])
MESSAGE_PARTS = ("head", "body", "verdict")
Swap = tuple[str, str, str]  # target id, how (innerHTML / beforeend), inner HTML


def out_of_band(swaps: list[Swap]) -> str:
    parts = [
        Markup('<div id="{}" hx-swap-oob="{}">{}</div>').format(target, how, Markup(html))  # noqa: S704 (rendered by autoescaping templates)
        for target, how, html in swaps
    ]
    return str(Markup("").join(parts))


@router.get("/threads/{thread_id}/events", dependencies=[Depends(page_stream_held)])
def thread_events(
    request: Request,
    thread_id: PathId,
    session: SessionDep,
    user: WebUser,
    db: DbDep,
    shown: str = "",
) -> Response:
    """Live thread page: new messages, the text of replies as it arrives, outcomes and verdicts."""
    debates.get_thread(session, thread_id)
    watch = SessionWatch(request, db, base_context(request))
    events = debate_events.thread_events(
        db=db,
        hub=request.app.state.hub,
        thread_id=thread_id,
        disconnected=request.is_disconnected,
        mark_synced=True,
        idle_after_s=KEEPALIVE_S,
        watch=watch.access,
        account_events=True,
    )
    return event_stream(ThreadPageUpdates(db, thread_id, shown, watch).run(events))


class ThreadPageUpdates:
    """What one browser has been sent, so each change becomes the right swap."""

    def __init__(self, db: Database, thread_id: int, shown: str, watch: SessionWatch) -> None:
        self.db = db
        self.watch = watch
        self.thread_id = thread_id
        self.shown = shown
        self.known: set[int] = set()
        self.turns: set[int] = set()

    async def run(self, events: AsyncGenerator[ThreadEvent]) -> AsyncIterator[bytes]:
        snapshot: list[Message] | None = []
        async with aclosing(events):
            async for event in events:
                if event.kind == IDLE:
                    yield b": keep-alive\n\n"  # so proxies keep a quiet connection open
                    continue
                if event.kind == ENDED:
                    yield self.watch.ended()
                    return
                if event.kind == ACCOUNT:
                    if self.watch.viewer_changed():
                        yield role_notice(self.watch.context)
                    continue
                if snapshot is not None and event.kind != SYNCED:
                    if event.message is not None:
                        snapshot.append(event.message)
                    continue
                if snapshot is not None:
                    html = await asyncio.to_thread(self._snapshot, snapshot)
                    snapshot = None
                else:
                    html = await self._change(event)
                if html:
                    yield event_bytes("update", html)

    def _read(self) -> ThreadPage:
        with self.db.reads() as session:
            return debate_overview.thread_page(session, thread_id=self.thread_id)

    def _snapshot(self, messages: list[Message]) -> str:
        """Everything, unless the page already shows exactly this."""
        found = self._read()
        context = {"turns": debate_overview.turns(messages), "authors": found.authors}
        turns = render_text("_thread_turns.html", context)
        self.known = {m.id for m in messages}
        self.turns = {m.turn for m in messages}
        if digest(turns) == self.shown:
            return ""
        return out_of_band([("thread-turns", "innerHTML", turns), self._summary(found)])

    async def _change(self, event: ThreadEvent) -> str:
        if event.message is not None:
            # The page's parts around the message, read once for every page of the thread
            # that this change reaches.
            reads = debate_events.thread_reads(self.db)
            found = await reads.page.get(self.thread_id, fresh_after=event.arrived_at)
            return await asyncio.to_thread(self._message, event.message, found)
        data = event.data or {}
        message_id = data.get("id")
        if event.kind != "delta" or message_id not in self.known:
            return ""
        text = str(escape(str(data.get("delta", ""))))
        return out_of_band([(f"msg-{message_id}-text", "beforeend", text)])

    def _message(self, message: Message, found: ThreadPage) -> str:
        context = {"message": message, "authors": found.authors}
        if message.id in self.known:
            swaps = [
                (
                    f"msg-{message.id}-{part}",
                    "innerHTML",
                    render_text(f"_message_{part}.html", context),
                )
                for part in MESSAGE_PARTS
            ]
        else:
            swaps = [self._added(message, context)]
        self.known.add(message.id)
        return out_of_band([*swaps, self._summary(found)])

    def _added(self, message: Message, context: dict[str, object]) -> Swap:
        """A new reply joins its turn; a new turn (the team's message) joins the thread."""
        if message.role == MessageRole.ASSISTANT and message.turn in self.turns:
            return (
                f"turn-{message.turn}-replies",
                "beforeend",
                render_text("_message.html", context),
            )
        self.turns.add(message.turn)
        user = message.role == MessageRole.USER
        turn = Turn(message.turn, message if user else None, [] if user else [message])
        html = render_text("_thread_turn.html", {**context, "turn": turn})
        return ("thread-turns", "beforeend", html)

    def _summary(self, found: ThreadPage) -> Swap:
        return (
            "thread-summary",
            "innerHTML",
            render_text("_thread_summary.html", {"found": found}),
        )
