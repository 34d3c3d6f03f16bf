"""The methods a path serves: HEAD wherever GET is, and a 405 that names them all.

FastAPI's routes serve exactly the methods they are declared with, so HEAD was a 405 on
every page and API read; and Starlette's router answers 405 with the first route whose path
matched, so a path with a GET and a PATCH route named only GET in `Allow`.
"""

import asyncio

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DISCONNECT: Message = {"type": "http.disconnect"}
# What a route may be declared with; HEAD follows GET, and nothing here serves OPTIONS.
METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route of the app serves at the scope's path, HEAD with GET; asked
    of the app's routes themselves, as routing would for a request with each method."""
    routes = scope["app"].router.routes
    methods = {method for method in METHODS if any(_serves(r, scope, method) for r in routes)}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _serves(route: BaseRoute, scope: Scope, method: str) -> bool:
    if isinstance(route, Mount):
        # The one mount is the static files, and StaticFiles reads GET (and HEAD) only.
        return method == "GET" and route.matches(scope)[0] is Match.FULL
    probe = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", "")}
    return route.matches({**probe, "method": method})[0] is Match.FULL


class HeadAsGet:
    """A HEAD request is served as a GET whose body is not sent. Once the headers are out the
    app is told the client has gone, so a live stream asked for by HEAD ends there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = asyncio.Event()

        async def send_headers_only(message: Message) -> None:
            if ended.is_set():
                return
            if message["type"] == "http.response.body":
                ended.set()
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def receive_until_ended() -> Message:
            if ended.is_set():
                return DISCONNECT
            receiving = asyncio.ensure_future(receive())
            ending = asyncio.ensure_future(ended.wait())
            await asyncio.wait({receiving, ending}, return_when=asyncio.FIRST_COMPLETED)
            ending.cancel()
            if receiving.done():
                return receiving.result()
            receiving.cancel()
            return DISCONNECT

        await self.app({**scope, "method": "GET"}, receive_until_ended, send_headers_only)


def method_not_allowed(scope: Scope) -> tuple[str, dict[str, str]]:
    """The detail and the `Allow` header of a 405 at the scope's path."""
    methods = allowed_methods(scope)
    return f"This address serves {', '.join(methods)} only", {"Allow": ", ".join(methods)}
