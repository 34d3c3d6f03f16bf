"""Errors on HTML routes become readable HTML; the API keeps its problem+json."""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.sse import format_sse_event
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import Database
from app.deps import SAFE_METHODS, run_admitted
from app.errors import DesignGateError, ServerBusy
from app.http_methods import method_not_allowed
from app.problems import DATABASE_RETRY_AFTER, HTTP_TITLES, BodyTimedOut, log_database_outage
from app.web.deps import (
    LoginRequired,
    SetupRequired,
    is_event_stream,
    readmit,
    return_path,
)
from app.web.templating import fragment, is_htmx, render_text

Handler = Callable[[Request, Exception], Awaitable[Response]]
NOT_WEB = ("/api/", "/static/", "/healthz", "/docs", "/redoc", "/openapi.json")
# htmx puts error messages here (see templates/base.html) instead of the request's target.
FLASH_TARGET = "#flash"
ADDRESS_NOT_VALID = "This address is not valid"
# What a page's path parameter names, for a malformed or impossible id in its address.
PATH_NOUNS = {
    "project_id": "project",
    "item_id": "checklist item",
    "thread_id": "debate thread",
    "meeting_id": "meeting",
    "generation_id": "generation",
    "user_id": "user",
    "token_id": "API token",
}
# The live-stream event after which a page's stream stops for good (static/app.js).
SIGNED_OUT = "signed-out"


def is_web(request: Request) -> bool:
    return not request.url.path.startswith(NOT_WEB)


class ReadableOversizedBody:
    """The body limit's 413 (problem+json, app/problems.py) as a readable message on pages:
    a form past it showed the browser raw JSON, or htmx swapped that JSON into the form."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(NOT_WEB):
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_readable(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                replaced = True
                detail = (
                    "What you sent is larger than this server accepts, so nothing was saved; "
                    "shorten it and send it again."
                )
                title = HTTP_TITLES[413]
                request = Request(scope)
                await known_viewer(request)
                await error_response(request, status=413, title=title, detail=detail)(
                    scope, receive, send
                )
                return
            if not replaced:
                await send(message)

        await self.app(scope, receive, send_readable)


async def known_viewer(request: Request) -> None:
    """The cookie's user, for an error page's navigation: an address no route has, or one
    whose id is malformed, fails before its route reads the user, and its page looked signed
    out. A request whose route read them already is left as it is."""
    if hasattr(request.state, "user") or "session" not in request.scope:
        return
    if not isinstance(request.session.get("uid"), int):
        return
    db: Database = request.app.state.db
    try:
        await run_admitted(db, readmit, request, db)
    except (OperationalError, ServerBusy):
        # The page says the database is down or busy, not who is signed in.
        request.state.user = None


def error_response(
    request: Request, *, status: int, title: str, detail: str, extra: dict[str, Any] | None = None
) -> HTMLResponse:
    """A readable message: in the page's alert region for htmx, a page of its own otherwise."""
    context = {"status": status, "title": title, "detail": detail, "extra": extra or {}}
    if is_htmx(request):
        headers = {"HX-Retarget": FLASH_TARGET, "HX-Reswap": "innerHTML"}
        return fragment(request, "_error.html", context, status_code=status, headers=headers)
    return fragment(request, "error.html", context, status_code=status)


def redirect(request: Request, url: str) -> Response:
    """Navigate the whole browser: HX-Redirect for htmx, 303 See Other otherwise."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _designgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DesignGateError)
    response = error_response(
        request, status=exc.status_code, title=exc.title, detail=exc.detail, extra=exc.extensions
    )
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _validation_error(request: Request, exc: Exception) -> Response:
    """An address or a form the pages did not make: said in the user's words, since the
    parameters' names mean nothing to them (the forms' own fields have errors under them)."""
    assert isinstance(exc, RequestValidationError)
    in_path, in_query = _errors_in(exc, "path"), _errors_in(exc, "query")
    if in_path and _signed_out(request):
        # Every page with an id in its address is for signed-in users: sign-in comes first,
        # as with a well-formed id, so the address's shape is told to users alone. FastAPI
        # judges a path before the route's own checks when the route signs its user in
        # within (``signed_in_read``), not as a dependency.
        return _login_required(request, LoginRequired(return_path(request)))
    if in_path:
        name = str(in_path[0]["loc"][-1])
        what = PATH_NOUNS.get(name, "page")
        detail = f"No such {what}: the address names a {what} by a number that none can have."
        return error_response(request, status=422, title=ADDRESS_NOT_VALID, detail=detail)
    if in_query:
        # A page's own links (the project list's pages) carry these; no form does.
        name = str(in_query[0]["loc"][-1])
        detail = f"The address's {name!r} is not one these pages make; follow the page's links."
        return error_response(request, status=422, title=ADDRESS_NOT_VALID, detail=detail)
    detail = (
        "Something this form sent is not what the page expects, so nothing was saved; "
        "reload the page and try again."
    )
    return error_response(request, status=422, title=HTTP_TITLES[422], detail=detail)


def _errors_in(exc: RequestValidationError, part: str) -> list[Any]:
    """The errors of one part of the request (``path``, ``query``, ``body``...)."""
    return [e for e in exc.errors() if tuple(e.get("loc", ()))[:1] == (part,)]


def _signed_out(request: Request) -> bool:
    """No one is signed in, as ``known_viewer`` found: a cookie's user it could not read for
    the database being down is not taken for signed out (the cookie still names them)."""
    cookie = request.scope.get("session") or {}
    return getattr(request.state, "user", None) is None and not isinstance(cookie.get("uid"), int)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = HTTP_TITLES.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404:
        detail = "There is no page at this address."
    if isinstance(exc, BodyTimedOut):
        detail = (
            f"What you sent did not arrive in full within {exc.allowed_s:g} seconds, so nothing "
            "was saved; check your connection and send it again."
        )
    if exc.status_code == 405:
        detail, allow = method_not_allowed(request.scope)
        response = error_response(request, status=405, title=title, detail=detail)
        response.headers.update(allow)
        return response
    return error_response(request, status=exc.status_code, title=title, detail=detail)


def _database_down(request: Request, exc: Exception) -> Response:
    log_database_outage(request, exc)
    detail = "The database cannot answer right now; try again shortly."
    response = error_response(request, status=503, title="Database unavailable", detail=detail)
    response.headers["Retry-After"] = DATABASE_RETRY_AFTER
    return response


def _unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug, as a readable page (the browser showed the API's problem+json); the middleware
    that calls this raises the exception again, so its traceback is logged."""
    detail = "The server failed to handle this request; the error has been logged. Try again."
    return error_response(request, status=500, title=HTTP_TITLES[500], detail=detail)


def _setup_required(request: Request, exc: Exception) -> Response:
    return redirect(request, "/setup")


def _login_required(request: Request, exc: Exception) -> Response:
    """A page goes to sign-in; a form sent or a live stream of a page whose session has
    ended stays where it is, with what was typed, and says how to sign in again."""
    assert isinstance(exc, LoginRequired)
    if is_event_stream(request):
        # An EventSource follows a redirect to the sign-in page, fails on its HTML and
        # reconnects for ever; this event tells the page instead (static/app.js).
        return Response(signed_out_event(exc), media_type="text/event-stream")
    if is_htmx(request):
        headers = {"HX-Retarget": FLASH_TARGET, "HX-Reswap": "innerHTML"}
        context = session_ended_context(exc, sent=request.method not in SAFE_METHODS)
        return fragment(request, "_session_ended.html", context, status_code=401, headers=headers)
    return redirect(request, exc.login_url)


def session_ended_context(exc: LoginRequired, *, sent: bool) -> dict[str, Any]:
    what = (
        "Your session ended (you signed out, perhaps in another tab or browser), so this was "
        "not sent."
        if sent
        else "Your session ended (you signed out, perhaps in another tab or browser)."
    )
    return {"login_url": exc.login_url, "what": what, "sent": sent}


def signed_out_event(exc: LoginRequired) -> bytes:
    """The live-stream event that tells a page its session has ended."""
    what = (
        "Your session ended (you signed out, perhaps in another tab or browser, or your "
        "account changed), so live updates stopped."
    )
    context = {"login_url": exc.login_url, "what": what, "sent": False}
    html = render_text("_session_ended.html", context)
    return format_sse_event(event=SIGNED_OUT, data_str=html)


def install(app: FastAPI) -> None:
    """Route each error to the web handler on HTML paths and to the API's elsewhere."""
    web_handlers: dict[type[Exception], Callable[[Request, Exception], Response]] = {
        DesignGateError: _designgate_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        OperationalError: _database_down,
        Exception: _unexpected_error,  # Starlette's ServerErrorMiddleware calls this one
    }
    for exc_class, web_handler in web_handlers.items():
        api_handler = app.exception_handlers.get(exc_class)
        # The page names who is signed in, read afresh, unless the database failed or the
        # server did: reading it could fail the same way. It then names whoever the request
        # had signed in before it failed, if anyone.
        reads_viewer = exc_class not in (OperationalError, Exception)
        app.add_exception_handler(exc_class, _dispatch(web_handler, api_handler, reads_viewer))
    app.add_exception_handler(SetupRequired, _as_async(_setup_required))
    app.add_exception_handler(LoginRequired, _as_async(_login_required))


def _dispatch(
    web_handler: Callable[[Request, Exception], Response], api_handler: Any, reads_viewer: bool
) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if is_web(request) or api_handler is None:
            if reads_viewer:
                await known_viewer(request)
            return web_handler(request, exc)
        response: Response = await api_handler(request, exc)
        return response

    return handle


def _as_async(handler: Callable[[Request, Exception], Response]) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        return handler(request, exc)

    return handle
