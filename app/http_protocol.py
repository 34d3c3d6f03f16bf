"""uvicorn's HTTP protocol with deadlines for a request's headers and for pauses in its body.

uvicorn times out a connection only while it is idle between requests, and that timer stops
at the first byte that arrives: a client that opens a connection and sends nothing, or sends
its headers a byte at a time, held the connection (and a file descriptor) for as long as it
liked, and a few hundred such clients would have used up what the process may open. Each
request's headers must now be complete within DESIGNGATE_REQUEST_HEADER_TIMEOUT_S of the
connection being opened, or of the request's first byte on a connection kept alive.

A body that stopped arriving held its connection the same way, and the part already received
too: up to DESIGNGATE_MAX_BODY_BYTES (64 MiB for an import) in the server's memory, for ever,
from a client that went away without closing (a laptop shut mid-upload) or meant to. A body
may now pause no longer than DESIGNGATE_REQUEST_BODY_IDLE_TIMEOUT_S between two pieces; past
that the request is answered 408 (if nothing was sent yet) and the connection closed. A body
that keeps coming, however slowly, is not cut here, nor is the response (live pages hold theirs
open): the whole body's deadline is the app's (app/problems.py).

Nor did anything bound a request's headers in size: httptools hands each header over whole,
so one header of many megabytes, or thousands of lines, sat in the server's memory until the
header deadline. A request line and headers over MAX_HEADER_BYTES are answered 431 and the
connection closed before the app sees the request (most servers and proxies allow 8 to 64 KiB).
"""

import asyncio
import json
import logging
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.flood_warnings import FloodWarning
from app.problems import HTTP_TITLES, PROBLEM_JSON, problem_body

log = logging.getLogger(__name__)

# The request line and headers of one request, together: a signed-in browser sends about 1 KiB.
MAX_HEADER_BYTES = 64 * 1024
# How long a connection refused for its headers is still read (and what comes dropped) before
# it is closed, so that the client gets the answer rather than a reset.
LINGER_S = 2.0


def stalled_connections() -> FloodWarning:
    """Connections closed by a deadline, for the operator. Each is logged at INFO, which the
    default logging does not show; a warning for each would flood the log under the very
    attack the deadlines are for."""
    return FloodWarning(
        log,
        "closed connections whose clients stalled (since the last such warning: %s); see "
        "DESIGNGATE_REQUEST_HEADER_TIMEOUT_S and DESIGNGATE_REQUEST_BODY_IDLE_TIMEOUT_S",
    )


stalled = stalled_connections()


class RequestDeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers are not complete in time, or whose request
    body pauses for too long."""

    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 30.0
    _header_deadline: asyncio.TimerHandle | None = None
    _body_deadline: asyncio.TimerHandle | None = None
    # Whether the body deadline last passed while the server was the one waiting.
    _server_waited: bool = False
    # Bytes received while a request's headers were incomplete, and whether they were too many
    # (the rest of what arrives on the connection is then ignored: it is being closed).
    _header_bytes: int = 0
    _parsed_header_bytes: int = 0
    _in_headers: bool = True
    _headers_too_large: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if self._headers_too_large:
            return
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Headers still incomplete after this many bytes: one header too large to end soon.
        if self._in_headers and self._header_bytes > MAX_HEADER_BYTES:
            self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parsed_header_bytes = 0
        self._arm_header_deadline()  # the next request on a connection kept alive

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_header_bytes(len(name) + len(value) + 4)  # ": " and CRLF

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        self._in_headers = False
        if self._headers_too_large:
            return  # no request for the app: the 431 is sent and the connection closing
        super().on_headers_complete()
        # Disarmed by on_message_complete, at once for a request without a body.
        self._server_waited = False
        self._arm_body_deadline()

    def on_body(self, body: bytes) -> None:
        if self._headers_too_large:
            return
        super().on_body(body)
        self._server_waited = False
        self._arm_body_deadline()

    def on_message_complete(self) -> None:
        self._disarm_body_deadline()
        if self._headers_too_large:
            return
        # What arrives next on the connection kept alive is the next request's headers.
        self._in_headers, self._header_bytes = True, 0
        super().on_message_complete()

    def _count_header_bytes(self, count: int) -> None:
        """Parsed headers add up: many of them, or one long one, each complete in a piece of
        data that also ends the headers, so never seen incomplete by ``data_received``."""
        self._parsed_header_bytes += count
        if self._parsed_header_bytes > MAX_HEADER_BYTES:
            self._refuse_headers()

    def _refuse_headers(self) -> None:
        if self._headers_too_large:
            return
        self._headers_too_large = True
        self._disarm_header_deadline()
        log.info(
            "closed a connection from %s: request line and headers over %d bytes",
            self._client_address(),
            MAX_HEADER_BYTES,
        )
        if self.transport.is_closing():
            return
        self.transport.write(
            _problem_response(
                431,
                "Request Header Fields Too Large",
                f"The request line and headers exceed {MAX_HEADER_BYTES} bytes",
            )
        )
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        # Closed at once, with what the client is still sending unread, the connection is
        # reset, and a reset can take the 431 with it before the client reads it (seen in CI).
        # So the answer is ended here, what follows is read and dropped (``data_received``),
        # and the connection closes when the client closes its side, or after LINGER_S.
        self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self._restarted(
            self._header_deadline, self.header_timeout_s, self._headers_late
        )

    def _disarm_header_deadline(self) -> None:
        _cancel(self._header_deadline)
        self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info(
                "closed a connection from %s: no complete request headers within %g s",
                self._client_address(),
                self.header_timeout_s,
            )
            stalled.count("with headers not complete in time")
            self.transport.close()

    def _arm_body_deadline(self) -> None:
        self._body_deadline = self._restarted(
            self._body_deadline, self.body_idle_timeout_s, self._body_paused
        )

    def _disarm_body_deadline(self) -> None:
        _cancel(self._body_deadline)
        self._body_deadline = None

    def _restarted(
        self, deadline: asyncio.TimerHandle | None, seconds: float, late: Callable[[], None]
    ) -> asyncio.TimerHandle:
        """A deadline ``seconds`` from now in place of ``deadline``."""
        _cancel(deadline)
        return self.loop.call_later(seconds, late)

    def _body_paused(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        server_waits = self._server_is_waited_for()
        if server_waits or self._server_waited:
            # The client's time starts when the server's wait ends, somewhere in the last
            # period if it has ended: one more period gives the client at least a whole one.
            self._server_waited = server_waits
            self._arm_body_deadline()
            return
        log.info(
            "closed a connection from %s: its request body paused for more than %g s",
            self._client_address(),
            self.body_idle_timeout_s,
        )
        stalled.count("with a request body paused too long")
        if cycle is not None and not cycle.response_started:
            self.transport.write(self._request_timeout_response())
        if cycle is not None:
            # The app reading the body is told the client is gone, and what it answers then is
            # not written after the 408.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _server_is_waited_for(self) -> bool:
        """The pause is the server's: it stopped reading until the app takes what came, or
        the client waits for "100 Continue", which is sent once the app asks for the body
        (a client that waits on after the answer is the one pausing)."""
        cycle = self.cycle
        waiting_for_continue = (
            cycle is not None and cycle.waiting_for_100_continue and not cycle.response_complete
        )
        return self.flow.read_paused or waiting_for_continue

    def _request_timeout_response(self) -> bytes:
        detail = (
            f"The request body stopped arriving for more than {self.body_idle_timeout_s:g} s;"
            " send it again"
        )
        return _problem_response(408, "Request Timeout", detail)

    def _client_address(self) -> str:
        return self.client[0] if self.client else "an unknown address"


def _problem_response(status: int, reason: str, detail: str) -> bytes:
    """A whole problem+json response that closes the connection, for the protocol's own
    refusals (the app never saw the request)."""
    body = json.dumps(problem_body(status=status, title=HTTP_TITLES[status], detail=detail))
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"content-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body.encode())}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body.encode()


def _cancel(deadline: asyncio.TimerHandle | None) -> None:
    if deadline is not None:
        deadline.cancel()


def with_deadlines(
    header_timeout_s: float, body_idle_timeout_s: float
) -> type[RequestDeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` option, with these deadlines."""
    return type(
        "RequestDeadlineProtocol",
        (RequestDeadlineProtocol,),
        {"header_timeout_s": header_timeout_s, "body_idle_timeout_s": body_idle_timeout_s},
    )
