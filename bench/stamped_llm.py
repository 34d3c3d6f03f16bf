"""An OpenAI-compatible model server whose streamed tokens carry the time they were sent.

Every chat completion is answered with ``--tokens`` chunks, one every ``--interval-ms``;
each chunk's text is ``<T>`` where T is ``time.monotonic()`` just before the chunk was
written. CLOCK_MONOTONIC is one clock for every process on a Linux machine, so a
subscriber in another process subtracts T from its own ``time.monotonic()`` at receipt.
It runs as its own process (``python -m bench.stamped_llm --port N``) so that its threads
do not compete for the benchmark client's interpreter lock.
"""

import argparse
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STAMP = re.compile(r"<(\d+\.\d+)>")


def stamps(text: str) -> list[float]:
    """The send times found in some streamed text."""
    return [float(found) for found in STAMP.findall(text)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    tokens = 60
    interval_s = 0.05

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that went away mid-stream
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not body.get("stream"):
            self._whole(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(self.server.tokens):
            time.sleep(self.server.interval_s)
            self._event(body, {"content": f"<{time.monotonic():.6f}>"}, None)
        self._event(body, {}, "stop", usage=True)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _whole(self, body: dict[str, Any]) -> None:
        message = {"role": "assistant", "content": "ok"}
        payload = _completion(body, [{"index": 0, "message": message, "finish_reason": "stop"}])
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _event(
        self, body: dict[str, Any], delta: dict[str, str], finish: str | None, usage: bool = False
    ) -> None:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        payload = _completion(body, [choice], usage=usage)
        self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _completion(
    body: dict[str, Any], choices: list[dict[str, Any]], *, usage: bool = True
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk" if body.get("stream") else "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "bench"),
        "choices": choices,
    }
    if usage:
        payload["usage"] = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--interval-ms", type=float, default=50)
    args = parser.parse_args()
    server = _Server(("127.0.0.1", args.port), _Handler)
    server.tokens = args.tokens
    server.interval_s = args.interval_ms / 1000
    server.serve_forever()


if __name__ == "__main__":
    main()
