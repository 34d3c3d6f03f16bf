"""HTML routers: parse the form, call the same services as the API, render a page or fragment."""

import anyio
from fastapi import FastAPI

from app.web import (
    account,
    admin,
    debates,
    errors,
    exports,
    generations,
    meetings,
    projects,
    streams,
    thread_stream,
)
from app.web.form_limit import SignedInFormLimit
from app.web.page_cache import RenderedPages
from app.web.security import SecurityHeaders
from app.web.sessions import CookieSessionMiddleware

modules = (account, projects, generations, meetings, debates, admin, streams, thread_stream)


def install(app: FastAPI) -> None:
    """The browser UI: its routes, cookie sessions, security headers and HTML errors."""
    errors.install(app)
    app.state.review_pages = RenderedPages()
    # The review pages without their debates sections (see app/web/projects.py).
    app.state.review_page_rests = RenderedPages()
    app.state.password_checks = anyio.CapacityLimiter(account.PASSWORD_CHECKS_AT_ONCE)
    # Inside the security headers and the session, outside the body limit (app/problems.py).
    app.add_middleware(errors.ReadableOversizedBody)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(CookieSessionMiddleware)
    # Each router straight into the app: a router nested in a router is one more level
    # every request's route matching walks through, and one more copy of every route.
    for module in (*modules, exports):
        app.include_router(module.router, include_in_schema=False)


def install_form_limit(app: FastAPI, *, max_body_bytes: int) -> None:
    """A signed-in session's forms may be larger than API bodies (app/web/form_limit.py).
    Installed before the body limit of app/problems.py, so that limit wraps it."""
    app.add_middleware(SignedInFormLimit, max_body_bytes=max_body_bytes)
