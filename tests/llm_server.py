"""A small OpenAI-compatible HTTP server the tests start on 127.0.0.1.

Each test scripts the replies it wants; litellm reaches this server over real
HTTP exactly as it would reach a provider. Nothing here bypasses litellm.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer to one chat-completion request."""

    text: str = ""
    chunk_size: int = 8
    delay_s: float = 0.0  # pause between streamed chunks
    # During that pause, an SSE comment this often (as proxies and some providers send to
    # keep a quiet connection open): bytes that carry no text. Not streamed, the answer is
    # preceded by a pause of delay_s with a newline this often (whitespace JSON allows,
    # which some providers send while the model writes).
    keep_alive_s: float = 0.0
    status: int = 200  # a non-200 status answers with an error body instead
    error_message: str = "scripted failure"
    cut_after_chunks: int | None = None  # close the connection mid-stream
    # After this many chunks, send ``event`` (an SSE data line's bytes, as they are) and end
    # the stream there: a provider's error mid-stream, or a line that is not JSON.
    event_after_chunks: int | None = None
    event: bytes = b""
    # Answer 200 with this body and content type instead of the model's answer: what a proxy
    # or a captive portal in the way sends back.
    raw_body: bytes | None = None
    raw_content_type: str = "text/html"
    # Go quiet for stall_s after this many chunks (a model thinking mid-answer); ``stalled``
    # is set when the quiet begins.
    stall_after_chunks: int | None = None
    stall_s: float = 0.0
    # Why the answer ended, as the provider says it: "length" (its max tokens) and
    # "content_filter" are the provider stopping the model.
    finish_reason: str = "stop"
    wait_before_s: float = 0.0  # pause before answering (for timeouts)
    prompt_tokens: int = 11
    completion_tokens: int = 7
    headers: dict[str, str] = field(default_factory=dict)
    # Set when the client closed this reply's stream before its end (the server sees that at
    # its next write): per reply, so a stream another test gave up cannot be counted here.
    abandoned: threading.Event = field(default_factory=threading.Event, compare=False)
    # Set once the whole answer was sent, its end included.
    sent: threading.Event = field(default_factory=threading.Event, compare=False)
    stalled: threading.Event = field(default_factory=threading.Event, compare=False)


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) is expected, not a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ScriptedLLM:
    """The scripted server: queue replies with ``script()``; read ``requests`` after."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        # Replies for one model (by the request's ``model`` field), ahead of the shared queue.
        self.model_replies: dict[str, deque[Reply]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *replies: Reply | str) -> None:
        with self.lock:
            for reply in replies:
                self.replies.append(Reply(text=reply) if isinstance(reply, str) else reply)

    def script_for(self, model: str, *replies: Reply | str) -> None:
        """Replies for requests naming ``model`` (litellm's "openai/" prefix is dropped)."""
        name = model.removeprefix("openai/")
        with self.lock:
            queue = self.model_replies.setdefault(name, deque())
            for reply in replies:
                queue.append(Reply(text=reply) if isinstance(reply, str) else reply)

    def reset(self) -> None:
        with self.lock:
            self.replies.clear()
            self.model_replies.clear()
            self.requests.clear()

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(body)
            own = self.model_replies.get(str(body.get("model", "")))
            if own:
                return own.popleft()
            if self.replies:
                return self.replies.popleft()
        return Reply(status=500, error_message="no reply was scripted for this request")

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        name = model.removeprefix("openai/")
        with self.lock:
            return [body for body in self.requests if body.get("model") == name]

    def prompts_text(self) -> list[str]:
        """Every received request's messages joined into one string each."""
        return [
            "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
            for body in self.requests
        ]


def _handler_for(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            reply = llm.next_reply(body)
            if reply.wait_before_s:
                time.sleep(reply.wait_before_s)
            if reply.raw_body is not None:
                self._send_raw(reply.raw_body, reply.raw_content_type)
            elif reply.status != 200:
                self._send_error(reply)
            elif body.get("stream"):
                self._stream(reply, body)
            else:
                self._send_whole(reply, body)

        def _send_json(self, status: int, payload: dict[str, Any], extra: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_raw(self, data: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_error(self, reply: Reply) -> None:
            error = {"message": reply.error_message, "type": "scripted", "code": reply.status}
            self._send_json(reply.status, {"error": error}, reply.headers)

        def _send_whole(self, reply: Reply, body: dict[str, Any]) -> None:
            message = {"role": "assistant", "content": reply.text}
            choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason}
            if reply.keep_alive_s:
                self._send_after_keep_alives(reply, _completion(body, [choice], reply))
                return
            self._send_json(200, _completion(body, [choice], reply), reply.headers)

        def _send_after_keep_alives(self, reply: Reply, payload: dict[str, Any]) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._pause(reply, keep_alive=b"\n")
                self._write_chunk(json.dumps(payload).encode())
                self._write_chunk(b"")
            except ConnectionError:
                reply.abandoned.set()
                raise

        def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
            try:
                self._stream_chunks(reply, body)
            except ConnectionError:
                reply.abandoned.set()
                raise

        def _stream_chunks(self, reply: Reply, body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [
                reply.text[i : i + reply.chunk_size]
                for i in range(0, len(reply.text), reply.chunk_size)
            ]
            for index, piece in enumerate(pieces):
                if reply.cut_after_chunks is not None and index >= reply.cut_after_chunks:
                    self._cut()
                    return
                if index == reply.event_after_chunks:
                    self._write_chunk(b"data: " + reply.event + b"\n\n")
                    self._write_chunk(b"data: [DONE]\n\n")
                    self._write_chunk(b"")
                    reply.sent.set()
                    return
                delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                self._event(_completion(body, [delta], None))
                if index + 1 == reply.stall_after_chunks:
                    reply.stalled.set()
                    time.sleep(reply.stall_s)
                self._pause(reply)
            if reply.cut_after_chunks is not None:
                self._cut()
                return
            done = {"index": 0, "delta": {}, "finish_reason": reply.finish_reason}
            # Asked for usage, OpenAI sends it in one more chunk with no choices.
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._event(_completion(body, [done], None if wants_usage else reply))
            if wants_usage:
                self._event(_completion(body, [], reply))
            self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")
            reply.sent.set()

        def _pause(self, reply: Reply, keep_alive: bytes = b": keep-alive\n\n") -> None:
            if not reply.keep_alive_s:
                time.sleep(reply.delay_s)
                return
            until = time.monotonic() + reply.delay_s
            while (left := until - time.monotonic()) > 0:
                time.sleep(min(reply.keep_alive_s, left))
                self._write_chunk(keep_alive)

        def _event(self, payload: dict[str, Any]) -> None:
            self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _cut(self) -> None:
            """Drop the connection without ending the chunked body."""
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)

    return Handler


def _completion(
    body: dict[str, Any], choices: list[dict[str, Any]], reply: Reply | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk" if body.get("stream") else "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": choices,
    }
    if reply is not None:
        payload["usage"] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
    return payload
