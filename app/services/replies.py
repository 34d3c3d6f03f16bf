"""Writing model replies in the background: streamed, persisted often, kept when they fail.

Each piece of text goes out on ``thread:{id}`` as soon as it arrives, marked unsaved (a
subscriber sees a token within milliseconds, not on the save timer). The reply is written
to the database at least every PERSIST_INTERVAL_S while it streams (so a crash or a
reconnecting browser loses little) and every write is announced too, with all the text
since the previous write, so a subscriber that missed unsaved pieces (it joined late) has
them from the next saved event, without re-reading the row.
"""

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import live
from app.db import Database, OutageWarning, utcnow, when_available
from app.llm import LLMFailure
from app.models import Message
from app.models.enums import MessageStatus
from app.runners import carries_on
from app.services import judge, model_work
from app.services.debate_events import UNSAVED
from app.services.debates import INTERRUPTED
from app.services.model_calls import CallTrace, ModelCalls

# Live subscribers get text as it arrives (unsaved deltas); saving is for a crash or a
# reconnect, and at 100 replies a quarter-second timer cost 400 commits a second.
PERSIST_INTERVAL_S = 1.0
FALLBACK = "fallback"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyJob:
    reply_id: int
    thread_id: int
    model: str
    prompt: list[dict[str, Any]]
    answers_pushback: bool


async def run_replies(db: Database, calls: ModelCalls, reply_ids: list[int]) -> None:
    """Write every reply of one turn side by side; replies to pushback then go to the judge."""
    with model_work.running():
        results = await asyncio.gather(
            *(run_reply(db, calls, reply_id) for reply_id in reply_ids), return_exceptions=True
        )
        for reply_id, result in zip(reply_ids, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("reply %s failed unexpectedly", reply_id, exc_info=result)


async def run_reply(db: Database, calls: ModelCalls, reply_id: int) -> None:
    job = await when_available(f"reply {reply_id}", _load_job, db, reply_id)
    if job is None:
        return
    writer = ReplyWriter(db, job)
    trace = CallTrace()
    try:
        async for piece in calls.stream(job.model, job.prompt, trace):
            writer.add(piece)
    except LLMFailure as failure:
        await writer.finish(MessageStatus.ERROR, trace, failure)
        return
    except asyncio.CancelledError:
        stopped = LLMFailure("interrupted", INTERRUPTED)
        await asyncio.shield(writer.finish(MessageStatus.INTERRUPTED, trace, stopped))
        raise
    except Exception as exc:
        # A bug must still leave a stored reason, not a reply that streams forever.
        await writer.finish(MessageStatus.ERROR, trace, LLMFailure("error", repr(exc)[:300]))
        raise
    await writer.finish(MessageStatus.COMPLETE, trace, None)
    if job.answers_pushback:
        await judge.judge_reply(db, calls, reply_id=reply_id)


def _load_job(db: Database, reply_id: int) -> ReplyJob | None:
    with db.transaction(write=False) as session:
        reply = session.get(Message, reply_id)
        if reply is None or reply.status != MessageStatus.STREAMING:
            return None
        asked = session.get(Message, reply.reply_to_id) if reply.reply_to_id else None
        return ReplyJob(
            reply_id=reply.id,
            thread_id=reply.thread_id,
            model=reply.requested_model or reply.model or "",
            prompt=list(reply.prompt),
            answers_pushback=bool(asked and asked.pushback),
        )


class ReplyWriter:
    """Collects a reply's text and writes it out on a timer and once more at the end."""

    def __init__(self, db: Database, job: ReplyJob) -> None:
        self.db = db
        self.job = job
        self.parts: list[str] = []
        self.saved_length = 0
        self.started = time.monotonic()
        self.first_token_ms: int | None = None
        self.lock = asyncio.Lock()
        self.closed = False
        self.saver = _ProgressSaver.of(db)
        self.saver.add(self)
        self.hub = live.hub_for(db.writer)
        self.unsaved: list[str] = []  # text not yet sent to live subscribers
        self.sent_length = 0

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def add(self, piece: str) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = self._elapsed_ms()
        self.parts.append(piece)
        if self.hub is not None:
            if not self.unsaved:
                # Pieces that arrive in one turn of the event loop go out as one event.
                asyncio.get_running_loop().call_soon(self._send_unsaved)
            self.unsaved.append(piece)

    def _send_unsaved(self) -> None:
        text, self.unsaved = "".join(self.unsaved), []
        if self.closed or self.hub is None or not text:
            return
        event = {
            "type": "delta",
            "id": self.job.reply_id,
            "status": MessageStatus.STREAMING,
            "offset": self.sent_length,
            "delta": text,
            "length": self.sent_length + len(text),
            UNSAVED: True,
        }
        self.sent_length += len(text)
        self.hub.publish_soon(f"thread:{self.job.thread_id}", event)

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def has_unsaved_text(self) -> bool:
        return not self.closed and len(self.parts) > 0 and len(self.content) > self.saved_length

    def announce_progress(self, session: Session, content: str) -> None:
        """Announce the text the saver's transaction stores for this reply."""
        self._announce(session, self._delta(MessageStatus.STREAMING, content))

    async def finish(
        self, status: MessageStatus, trace: CallTrace, failure: LLMFailure | None
    ) -> None:
        """Store the final text, status, reason, usage and timings; leave the saver."""
        try:
            async with self.lock:
                self.closed = True
                latency_ms = self._elapsed_ms()
                what = f"reply {self.job.reply_id}"
                await when_available(what, self._save_final, status, trace, failure, latency_ms)
        finally:
            self.saver.remove(self)

    def _save_final(
        self, status: MessageStatus, trace: CallTrace, failure: LLMFailure | None, latency_ms: int
    ) -> None:
        content = self.content
        with self.db.transaction() as session:
            # Locked (PostgreSQL), so a sweep cannot give the reply up between this read and
            # the write: it waits, then finds the reply no longer streaming.
            reply = session.get(Message, self.job.reply_id, with_for_update=True)
            if reply is None:
                return
            if reply.status != MessageStatus.STREAMING:
                if not _saved_already(reply, content, status, latency_ms):
                    self._keep_given_up(session, reply, content)
                return
            _apply_outcome(reply, content, status, trace, failure)
            reply.first_token_ms = self.first_token_ms
            reply.latency_ms = latency_ms
            event = self._delta(reply.status, content)
            if reply.error:
                event.update(error=reply.error, error_kind=reply.error_kind)
            self._announce(session, event)
        self.saved_length = len(content)

    def _keep_given_up(self, session: Session, reply: Message, content: str) -> None:
        """Another server process gave this reply up while this one still streamed it (it
        took this process for gone, app/services/recovery.py) and told every subscriber.
        Its status and reason stand; the text this process has since is kept in place of
        the shorter text stored, so nothing the model wrote is lost either."""
        log.warning(
            "reply %d was marked %s by another server process while this one streamed it;"
            " its status stands",
            reply.id,
            reply.status,
        )
        stored = reply.content
        if not carries_on(stored, content):
            return
        reply.content = content
        reply.updated_at = utcnow()
        event = self._delta(reply.status, content, since=len(stored))
        if reply.error:
            event.update(error=reply.error, error_kind=reply.error_kind)
        self._announce(session, event)

    def _delta(self, status: str, content: str, *, since: int | None = None) -> dict[str, Any]:
        """The text stored since the previous save (or since ``since``), as a delta event."""
        offset = self.saved_length if since is None else since
        return {
            "type": "delta",
            "id": self.job.reply_id,
            "status": status,
            "offset": offset,
            "delta": content[offset:],
            "length": len(content),
        }

    def _announce(self, session: Session, event: dict[str, Any]) -> None:
        live.announce(session, f"thread:{self.job.thread_id}", event)


class _ProgressSaver:
    """Saves the text of every reply streaming from one database, all in one write
    transaction every PERSIST_INTERVAL_S.

    One transaction per reply was a hundred a second with a hundred replies: each queued
    for SQLite's one write lock on a worker thread, and together they took every thread of
    the default pool, so whatever else ran on it (a reply being started) waited behind them.
    """

    _of: "weakref.WeakKeyDictionary[Database, _ProgressSaver]" = weakref.WeakKeyDictionary()

    def __init__(self, db: Database) -> None:
        self.db = db
        self.loop = asyncio.get_running_loop()
        self.writers: set[ReplyWriter] = set()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, db: Database) -> "_ProgressSaver":
        saver = cls._of.get(db)
        if saver is None or saver.loop is not asyncio.get_running_loop():
            saver = cls._of[db] = cls(db)
        return saver

    def add(self, writer: "ReplyWriter") -> None:
        self.writers.add(writer)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._save_periodically())

    def remove(self, writer: "ReplyWriter") -> None:
        self.writers.discard(writer)

    async def _save_periodically(self) -> None:
        outage = OutageWarning("the text of streaming replies")
        while self.writers:  # stops with the last reply; the next one starts it again
            await asyncio.sleep(PERSIST_INTERVAL_S)
            try:
                await self._save_once()
                outage.succeeded()
            except OperationalError as exc:
                # The text stays here; the next save, or each reply's final one (which waits
                # for the database), stores it.
                outage.failed(exc)
            except Exception:  # the final save still stores each reply; keep saving others
                log.exception("saving the text of streaming replies failed")

    async def _save_once(self) -> None:
        # Each writer's lock is held as its own flusher held it: a reply finishing meanwhile
        # waits, so its final save always comes after this one.
        due = [w for w in self.writers if w.has_unsaved_text() and not w.lock.locked()]
        for writer in due:
            await writer.lock.acquire()
        try:
            saving = [(w, w.content) for w in due if w.has_unsaved_text()]
            if saving:
                await asyncio.to_thread(_save_progress, self.db, saving)
                for writer, content in saving:
                    writer.saved_length = len(content)
        finally:
            for writer in due:
                writer.lock.release()


def _save_progress(db: Database, saving: list[tuple["ReplyWriter", str]]) -> None:
    """Store the text of every reply still streaming: one statement to find them, one
    executed for each. Without ORM objects: loading and flushing 100 of them was about
    half of a save (5.2 ms idle, 16 to 46 ms while 100 replies streamed), every second,
    on a worker thread that shares the interpreter with the event loop."""
    by_id = {writer.job.reply_id: (writer, content) for writer, content in saving}
    with db.transaction() as session:
        connection = session.connection()
        streaming = connection.execute(_STILL_STREAMING, {"ids": list(by_id)}).scalars().all()
        if not streaming:
            return
        saved_at = utcnow()
        rows = [
            {
                "reply_id": reply_id,
                "text": by_id[reply_id][1],
                "first_token": by_id[reply_id][0].first_token_ms,
                "saved_at": saved_at,
            }
            for reply_id in streaming
        ]
        connection.execute(_SAVE_TEXT, rows)
        for reply_id in streaming:
            writer, content = by_id[reply_id]
            writer.announce_progress(session, content)


# Core statements (run on the session's connection, so no objects are loaded or tracked).
_STILL_STREAMING = select(Message.id).where(
    Message.id.in_(bindparam("ids", expanding=True)),
    Message.status == MessageStatus.STREAMING,
)
# The status is checked again: a reply that stopped streaming since is not written back.
_SAVE_TEXT = (
    update(Message)
    .where(Message.id == bindparam("reply_id"), Message.status == MessageStatus.STREAMING)
    .values(
        content=bindparam("text", type_=Message.content.type),
        first_token_ms=bindparam("first_token", type_=Message.first_token_ms.type),
        updated_at=bindparam("saved_at", type_=Message.updated_at.type),
    )
)


def _saved_already(reply: Message, content: str, status: MessageStatus, latency_ms: int) -> bool:
    """Whether this is the process's own final save, whose commit reached the database but
    whose answer was lost to an outage, so that ``when_available`` made it again (only the
    final save stores the latency; a reply given up by another process has none)."""
    return (reply.status, reply.content, reply.latency_ms) == (status, content, latency_ms)


def _apply_outcome(
    reply: Message,
    content: str,
    status: MessageStatus,
    trace: CallTrace,
    failure: LLMFailure | None,
) -> None:
    reply.content = content
    reply.status = status
    reply.error = failure.reason if failure else None
    reply.error_kind = failure.kind if failure else None
    reply.model = trace.model or reply.model
    reply.attempts = list(trace.attempts)
    if reply.model != reply.requested_model and FALLBACK not in reply.flags:
        reply.flags = [*reply.flags, FALLBACK]
    # Every attempt's billed tokens, the failed ones' too: the budget counts what was spent.
    reply.tokens_in = trace.usage.tokens_in
    reply.tokens_out = trace.usage.tokens_out
    reply.cost = trace.usage.cost
    reply.updated_at = utcnow()
