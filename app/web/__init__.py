"""HTML routers: parse the form, call the same services as the API, render a page or fragment."""

from fastapi import APIRouter, FastAPI

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
from app.web.security import SecurityHeaders
from app.web.sessions import CookieSessionMiddleware

web_router = APIRouter(include_in_schema=False)
modules = (account, projects, generations, meetings, debates, admin, streams, thread_stream)
for module in (*modules, exports):
    web_router.include_router(module.router)


def install(app: FastAPI) -> None:
    """The browser UI: its routes, cookie sessions, security headers and HTML errors."""
    errors.install(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(CookieSessionMiddleware)
    app.include_router(web_router)
