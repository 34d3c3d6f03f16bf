"""uvicorn's HTTP protocol with a deadline for a request's headers.

uvicorn times out a connection only while it is idle between requests, and that timer stops
at the first byte that arrives: a client that opens a connection and sends nothing, or sends
its headers a byte at a time, held the connection (and a file descriptor) for as long as it
liked, and a few hundred such clients would have used up what the process may open. Each
request's headers must now be complete within DESIGNGATE_REQUEST_HEADER_TIMEOUT_S of the
connection being opened, or of the request's first byte on a connection kept alive; the
body is not limited by it (an import of a large backup may take a while to upload), nor is
the response (live pages hold theirs open).
"""

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers are not complete in time."""

    header_timeout_s: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()  # the next request on a connection kept alive

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info(
                "closed a connection from %s: no complete request headers within %g s",
                self.client[0] if self.client else "an unknown address",
                self.header_timeout_s,
            )
            self.transport.close()


def with_header_timeout(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` option, with this deadline."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": timeout_s}
    )
