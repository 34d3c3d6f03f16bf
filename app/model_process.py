"""Model calls run in a process of their own.

litellm turns every streamed chunk into several response objects, about 0.65 ms of CPU per
token; with a hundred replies streaming, that was a third of the server's one core and
every page and live event queued behind it. The calls now run in a child process
(``python -m app.model_process``) that speaks newline-delimited JSON over its stdin and
stdout: the server sends a call and gets back the reply's text piece by piece, its usage, or
the failure already classified (kind, reason, Retry-After), exactly as ``app.llm`` reports
them in process. Retries, fallbacks and circuit breakers stay in the server
(``app.services.model_calls``), which sees the same ``LLMFailure`` either way.

One child serves every app in the process. It is started on the first call (or by the
warm-up after start-up), started again on the next call if it dies (the calls it had fail
with a stored reason), and it exits when its stdin closes, so a server killed with SIGKILL
leaves no child behind. A thread of the server's checks every second or so that the child
answers over its pipe; one that answers no check within ``ANSWER_WITHIN_S`` (stopped, or
wedged so it reads and sends nothing) is killed and its calls fail, as if it had died.
Requests reach the child through a thread of the server's per child (``_Writer``), so a
child that reads nothing holds that thread on its full pipe, never the event loop.
"""

import asyncio
import collections
import contextlib
import functools
import itertools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from app.llm import JsonReply, LLMFailure, ModelEndpoint, Usage

log = logging.getLogger(__name__)
# The child must answer (a piece, the end or a failure) within the call's own timeout; this
# margin covers its start and litellm's import, so only a child that hangs is cut off here.
SILENCE_MARGIN_S = 30.0
# A check goes to the child this long after its last answer, calls in flight or not; the
# child answers it from its event loop, between the pieces of its replies.
CHECK_EVERY_S = 1.0
# A child that answers no check within this long once it has started (its first answer may
# take SILENCE_MARGIN_S: the interpreter's start) is hung and is killed. Its event loop
# answers in milliseconds even with a hundred replies streaming.
ANSWER_WITHIN_S = 10.0
_WATCH_TICK_S = 0.5
Message = dict[str, Any]


@dataclass
class _Call:
    """One call in flight: where its messages go."""

    loop: asyncio.AbstractEventLoop
    child: "subprocess.Popen[bytes]"
    writer: "_Writer"  # its child's stdin
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    finished: bool = False


@dataclass
class _Watch:
    """One child's checks: the last one sent, and whether and when it was answered."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ended: threading.Event = field(default_factory=threading.Event)  # its reader saw its end
    number: int = 0
    asked_at: float | None = None  # when the check not yet answered was due
    answered_at: float = 0.0
    started: bool = False  # it has answered once
    reason: str | None = None  # why the server killed it

    def answered(self, number: Any) -> None:
        with self.lock:
            if number == self.number:
                self.asked_at, self.answered_at, self.started = None, time.monotonic(), True


class _Writer:
    """One child's stdin, written by a thread of its own in the order messages were put.

    The event loop wrote each request itself: a child that reads nothing (stopped, wedged)
    fills its pipe, and a request larger than the room left held the loop, so every page and
    API request of the server, until the watch killed the child. A cancel is put after its
    call's request, so it follows it here too.
    """

    def __init__(self, stdin: IO[bytes]) -> None:
        self._stdin = stdin
        # Held for each whole write, apart from the ModelProcess's lock: a write blocked on a
        # full pipe must not stop the reader (which needs the calls) from draining the child,
        # and the watch's checks go out between two writes, never inside one.
        self._write_lock = threading.Lock()
        self._ready = threading.Condition()
        self._queue: collections.deque[bytes] = collections.deque()
        self._closing = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="model-process-writer", daemon=True).start()

    def put(self, message: Message) -> None:
        """Queue a message; OSError once the child's stdin is closed or the child is gone.

        Encoded here, on the caller's side: the request is the messages as they were at the
        call (the caller may change its list afterwards), and a value JSON cannot hold fails
        that call rather than the writer.
        """
        line = json.dumps(message).encode() + b"\n"
        with self._ready:
            if self._closing:
                raise BrokenPipeError("its stdin is closed")
            self._queue.append(line)
            self._ready.notify()

    def close(self) -> None:
        """Drop what is queued and close stdin once a write under way ends (the child exits
        when it reads the end; one that reads nothing is killed, which ends that write)."""
        with self._ready:
            self._closing = True
            self._queue.clear()
            self._ready.notify()

    def write_now(self, message: Message) -> bool:
        """Write a short message if that can be done without waiting: not behind a write
        blocked on the pipe of a child that reads nothing, nor on that full pipe itself."""
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            poll = select.poll()  # not select.select: a busy server has descriptors past 1024
            poll.register(self._stdin.fileno(), select.POLLOUT)
            if not poll.poll(0):
                return False
            # Shorter than PIPE_BUF, so the pipe takes it whole once it has room.
            self._stdin.write(json.dumps(message).encode() + b"\n")
            return True
        except (OSError, ValueError):  # the child is gone, or its stdin is closed
            return False
        finally:
            self._write_lock.release()

    def _run(self) -> None:
        try:
            while (line := self._next()) is not None:
                with self._write_lock:
                    _write_all(self._stdin, line)
        except (OSError, ValueError):
            pass  # the child is gone: its reader fails its calls with the reason
        finally:
            self.close()
            with self._write_lock:  # not while the watch writes a check
                _close_quietly(self._stdin)

    def _next(self) -> bytes | None:
        with self._ready:
            while not self._queue and not self._closing:
                self._ready.wait()
            return None if self._closing else self._queue.popleft()


class ModelProcess:
    """The server's side: starts the child, sends calls, routes what comes back."""

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command or [sys.executable, "-m", "app.model_process"]
        self._lock = threading.Lock()  # guards the child, its writer and the calls
        self._child: subprocess.Popen[bytes] | None = None
        self._writer: _Writer | None = None  # the child's
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)

    def start(self) -> None:
        """Start the child now (it imports litellm meanwhile) rather than on the first call."""
        with self._lock:
            self._running_child()

    def stop(self) -> None:
        """Close the child's stdin (it exits) and wait for it briefly."""
        with self._lock:
            child, self._child = self._child, None
            writer, self._writer = self._writer, None
        if child is None:
            return
        if writer is not None:
            writer.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    async def stream(
        self, endpoint: ModelEndpoint, messages: list[dict[str, Any]], *, usage: Usage | None
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text as it arrives; raise LLMFailure on any failure."""
        call_id, call = self._send("stream", endpoint, messages)
        try:
            while True:
                message = await _next(call, endpoint)
                if "piece" in message:
                    yield str(message["piece"])
                    continue
                call.finished = True  # the child is done with it: nothing to cancel
                _raise_failure(message)
                if usage is not None:
                    _fill_usage(usage, message.get("usage"))
                return
        finally:
            self._forget(call_id, call)

    async def complete_json(
        self, endpoint: ModelEndpoint, messages: list[dict[str, Any]]
    ) -> JsonReply:
        """One non-streamed call that must answer with a JSON object; LLMFailure otherwise."""
        call_id, call = self._send("json", endpoint, messages)
        try:
            message = await _next(call, endpoint)
            call.finished = True
            _raise_failure(message)
            usage = Usage()
            _fill_usage(usage, message.get("usage"))
            return JsonReply(dict(message["data"]), str(message["text"]), usage)
        finally:
            self._forget(call_id, call)

    def _send(
        self, op: str, endpoint: ModelEndpoint, messages: list[dict[str, Any]]
    ) -> tuple[int, _Call]:
        request = {
            "op": op,
            "endpoint": asdict(endpoint),
            "messages": messages,
            # The child logs at the server's level (a debugging server sees litellm's records).
            "log_level": logging.getLogger().getEffectiveLevel(),
        }
        with self._lock:
            call_id = next(self._ids)
            child, writer = self._running_child()
            call = _Call(asyncio.get_running_loop(), child, writer)
            self._calls[call_id] = call
        try:
            writer.put({"id": call_id, **request})
        except OSError as exc:
            self._forget(call_id, call)
            raise LLMFailure("unavailable", f"The model process is not running: {exc}") from exc
        return call_id, call

    def _forget(self, call_id: int, call: _Call) -> None:
        """The caller is done: a call it gave up on (cancelled, closed) is cancelled there."""
        with self._lock:
            self._calls.pop(call_id, None)
        if call.finished:
            return
        with contextlib.suppress(OSError):  # the child is gone: nothing is left to cancel
            call.writer.put({"id": call_id, "op": "cancel"})

    def _running_child(self) -> tuple[subprocess.Popen[bytes], _Writer]:
        """The child and its writer, started if there is none (the lock is held)."""
        if self._child is not None and self._writer is not None and self._child.poll() is None:
            return self._child, self._writer
        try:
            child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
            )
        except OSError as exc:
            raise LLMFailure("unavailable", f"The model process could not start: {exc}") from exc
        assert child.stdin is not None
        writer = _Writer(child.stdin)
        self._child, self._writer = child, writer
        writer.start()
        watch = _Watch()
        for target, name in ((self._read_replies, "reader"), (self._watch_over, "watch")):
            thread = threading.Thread(
                target=target,
                args=(child, watch, writer),
                name=f"model-process-{name}",
                daemon=True,
            )
            thread.start()
        return child, writer

    def _read_replies(self, child: subprocess.Popen[bytes], watch: _Watch, writer: _Writer) -> None:
        """Route each line the child writes to its call, one hand-over per event loop per read."""
        assert child.stdout is not None
        fd = child.stdout.fileno()
        pending = b""
        while chunk := os.read(fd, 1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            self._deliver([message for line in lines if (message := _parsed(line))], watch)
        code = child.wait()
        watch.ended.set()
        writer.close()  # what was still queued for it is dropped; its calls fail just below
        self._fail_calls_of(child, code, watch)

    def _watch_over(self, child: subprocess.Popen[bytes], watch: _Watch, writer: _Writer) -> None:
        """Send the child a check after each answer; kill it if one goes unanswered too long.

        Calls waited on a hung child for their whole timeout plus SILENCE_MARGIN_S, and so
        did every later call, for as long as the server ran.
        """
        sent = True
        while not watch.ended.wait(_WATCH_TICK_S):
            now = time.monotonic()
            with watch.lock:
                if watch.asked_at is None and now - watch.answered_at >= CHECK_EVERY_S:
                    watch.number += 1
                    watch.asked_at, sent = now, False
                asked_at, number = watch.asked_at, watch.number
                limit = ANSWER_WITHIN_S if watch.started else SILENCE_MARGIN_S
            if asked_at is None:
                continue
            if now - asked_at > limit:
                self._kill_hung(child, watch, limit)
                return
            if not sent:
                sent = writer.write_now({"id": 0, "op": "check", "number": number})

    def _kill_hung(self, child: subprocess.Popen[bytes], watch: _Watch, limit: float) -> None:
        """SIGKILL a child that stopped answering; its reader then fails its calls."""
        reason = (
            f"The model process stopped answering (no answer to a check within {limit:g} s); "
            "it was killed and the next call starts a new one."
        )
        with self._lock:
            if self._child is not child:
                return  # stop() is ending it
            self._child = None  # the next call starts a new child, even before this one is gone
            watch.reason = reason
            calls = sum(1 for call in self._calls.values() if call.child is child)
        log.error(
            "the model process (pid %d) stopped answering (no answer to a check within %g s):"
            " killed it, failing its %d call(s); the next call starts a new one",
            child.pid,
            limit,
            calls,
        )
        with contextlib.suppress(OSError):
            child.kill()  # SIGKILL ends a stopped process too

    def _deliver(self, messages: list[Message], watch: _Watch) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Call, Message]]] = {}
        for message in messages:
            if "log" in message:
                _log_here(message["log"])
            elif "checked" in message:
                watch.answered(message["checked"])
        with self._lock:
            for message in messages:
                call = self._calls.get(int(message["id"]))
                if call is not None:
                    by_loop.setdefault(call.loop, []).append((call, message))
        for loop, batch in by_loop.items():
            _hand_over(loop, batch)

    def _fail_calls_of(self, child: subprocess.Popen[bytes], code: int, watch: _Watch) -> None:
        """The child has exited: every call it still had fails now, with the reason."""
        with self._lock:
            if self._child is child:
                self._child = None
                how = "unexpectedly"
            else:
                how = "when it was told to"  # by stop()
            lost = [(i, call) for i, call in self._calls.items() if call.child is child]
        if watch.reason is not None:  # killed for not answering, and logged then
            reason = watch.reason
        else:
            if lost:
                log.error("the model process ended (exit code %s) with %d call(s)", code, len(lost))
            reason = f"The model process stopped {how} (exit code {code})."
        failure = {"failure": {"kind": "unavailable", "reason": reason}}
        for call_id, call in lost:
            _hand_over(call.loop, [(call, {"id": call_id, **failure})])


def _parsed(line: bytes) -> Message | None:
    try:
        message = json.loads(line)
    except ValueError:
        log.error("the model process wrote a line that is not JSON: %r", line[:200])
        return None
    return message if isinstance(message, dict) and "id" in message else None


# What a log record carries across: its message is formatted in the child.
_LOG_FIELDS = ("name", "levelno", "levelname", "pathname", "lineno", "funcName", "created")


def _log_here(fields: Any) -> None:
    """Log a record of the child's through this process's loggers, handlers and levels."""
    if not isinstance(fields, dict):
        return
    record = logging.makeLogRecord(fields)
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


class _ForwardLogs(logging.Handler):
    """The child's log records go to the server, which logs them as its own."""

    def __init__(self, replies: "_Replies") -> None:
        super().__init__()
        self._replies = replies

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {name: getattr(record, name) for name in _LOG_FIELDS}
            fields["msg"] = record.getMessage()
            if record.exc_info:
                fields["exc_text"] = self.format(record).partition("\n")[2]
            self._replies.send({"id": 0, "log": fields})
        except Exception:
            self.handleError(record)


def _hand_over(loop: asyncio.AbstractEventLoop, batch: list[tuple[_Call, Message]]) -> None:
    def put_all() -> None:
        for call, message in batch:
            call.inbox.put_nowait(message)

    with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting
        loop.call_soon_threadsafe(put_all)


async def _next(call: _Call, endpoint: ModelEndpoint) -> Message:
    try:
        async with asyncio.timeout(endpoint.timeout_s + SILENCE_MARGIN_S):
            return await call.inbox.get()
    except TimeoutError:
        raise LLMFailure("timeout", "The model did not answer within the timeout.") from None


def _raise_failure(message: Message) -> None:
    failure = message.get("failure")
    if failure is not None:
        billed = Usage()
        _fill_usage(billed, failure.get("usage"))
        raise LLMFailure(
            str(failure["kind"]),
            str(failure["reason"]),
            retry_after_s=failure.get("retry_after_s"),
            usage=billed if billed.known else None,
        )


def _fill_usage(usage: Usage, reported: Any) -> None:
    if isinstance(reported, dict):
        usage.tokens_in = reported.get("tokens_in")
        usage.tokens_out = reported.get("tokens_out")
        usage.cost = reported.get("cost")


def _write_all(stream: IO[bytes], data: bytes) -> None:
    """A write to a pipe may take only part of a long line (a signal came, or the child went
    away meanwhile): the rest goes, or fails with the child gone, on the next try."""
    view = memoryview(data)
    while view:
        view = view[stream.write(view) :]


def _close_quietly(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


@functools.cache
def shared() -> ModelProcess:
    """The one model process of this server process."""
    return ModelProcess()


# --- the child -------------------------------------------------------------------------


class _Replies:
    """The child's stdout: lines written in one turn of its event loop go out in one write."""

    def __init__(self, out: IO[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._out = out
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._lines: list[bytes] = []

    def send(self, message: Message) -> None:
        if threading.get_ident() != self._loop_thread:  # a log record from a worker thread
            self._loop.call_soon_threadsafe(self.send, message)
            return
        if not self._lines:
            self._loop.call_soon(self._flush)
        self._lines.append(json.dumps(message).encode() + b"\n")

    def _flush(self) -> None:
        data, self._lines = b"".join(self._lines), []
        self._out.write(data)
        self._out.flush()


async def _run_call(request: Message, replies: _Replies) -> None:
    from app import llm

    call_id = request["id"]
    logging.getLogger().setLevel(request.get("log_level", logging.WARNING))
    endpoint = ModelEndpoint(**request["endpoint"])
    try:
        if request["op"] == "stream":
            usage = Usage()
            async for piece in llm.stream_chat(endpoint, request["messages"], usage=usage):
                replies.send({"id": call_id, "piece": piece})
            replies.send({"id": call_id, "usage": asdict(usage)})
        else:
            reply = await llm.complete_json(endpoint, request["messages"])
            replies.send(
                {
                    "id": call_id,
                    "data": reply.data,
                    "text": reply.text,
                    "usage": asdict(reply.usage),
                }
            )
    except LLMFailure as failure:
        kind, reason, retry = failure.kind, failure.reason, failure.retry_after_s
        failure_message: Message = {"kind": kind, "reason": reason, "retry_after_s": retry}
        if failure.usage is not None:
            failure_message["usage"] = asdict(failure.usage)
        replies.send({"id": call_id, "failure": failure_message})
    except Exception as exc:  # a bug here must still end the call with a reason
        log.exception("model call %s failed in the model process", call_id)
        replies.send({"id": call_id, "failure": {"kind": "error", "reason": repr(exc)[:300]}})


async def _serve(read_requests: Callable[[], Coroutine[Any, Any, bytes]], out: IO[bytes]) -> None:
    replies = _Replies(out, asyncio.get_running_loop())
    logging.getLogger().addHandler(_ForwardLogs(replies))
    running: dict[int, asyncio.Task[None]] = {}
    while line := await read_requests():
        request = json.loads(line)
        if request["op"] == "check":  # the server asks whether this process still answers
            replies.send({"id": 0, "checked": request["number"]})
            continue
        if request["op"] == "cancel":
            task = running.get(request["id"])
            if task is not None:
                task.cancel()
            continue
        call_id: int = request["id"]
        task = asyncio.create_task(_run_call(request, replies))
        running[call_id] = task
        task.add_done_callback(functools.partial(_drop, running, call_id))
    # stdin closed: the server stopped or was killed. Nobody is left to read a reply.
    os._exit(0)


def _drop(running: dict[int, asyncio.Task[None]], call_id: int, _task: object) -> None:
    running.pop(call_id, None)


async def _main() -> None:
    from app import llm

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)  # a prompt is one line, and may be long
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    # Replies go out on a copy of stdout; stdout itself now points at stderr, so whatever a
    # library prints lands in the server's log instead of in the middle of a reply.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    loop.run_in_executor(None, llm.warm_up)
    await _serve(reader.readline, out)


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group; the server decides when its calls stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger().setLevel(logging.WARNING)
    asyncio.run(_main())
