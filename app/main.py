"""The application factory."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import live, model_process, problems, web
from app.api import router as api
from app.config import Settings, get_settings
from app.db import Database
from app.health import router as health_router
from app.http_methods import HeadAsGet
from app.services import instance, model_work, recovery, templates
from app.services.model_calls import ModelCalls
from app.stream_access import OpenStreams

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger("designgate")
# How long a stopping server waits for replies and generations to store their text.
MODEL_WORK_STOP_S = 10.0


def _start_up(app: FastAPI) -> frozenset[int]:
    """Read what the app needs and mark work left behind; the runners whose work is marked
    only after their listeners have had time to connect again."""
    db: Database = app.state.db
    with db.transaction() as session:
        app.state.secret_key = instance.secret_key(session, app.state.settings)
        started = recovery.mark_at_start_up(session)
        shadowed = templates.shadowed_templates(session, catalog=app.state.templates)
    recovery.log_marked(started.marked)
    for key, source in shadowed:
        log.warning(
            "checklist template %r added through the API is hidden by the %s template with the "
            "same key: new projects naming it get that template's items; give one a new key",
            key,
            source,
        )
    return started.seem_gone


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    seem_gone = await asyncio.to_thread(_start_up, app)
    await app.state.hub.start()
    background: list[asyncio.Task[None]] = []
    if seem_gone:
        marking = recovery.mark_after_reconnecting(app.state.db, seem_gone)
        background.append(asyncio.create_task(marking))
    if not app.state.db.is_sqlite:
        # Other processes may serve this database: mark the work of one that dies.
        background.append(asyncio.create_task(recovery.Sweeper(app.state.db).run()))
    warm_up = None
    if settings.model and settings.llm_warmup:
        # After start-up: the model process imports litellm while the first pages are served.
        warm_up = asyncio.get_running_loop().run_in_executor(None, model_process.shared().start)
    yield
    if warm_up is not None:
        warm_up.cancel()
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # Before the database closes: the model's work stores its text, marked interrupted.
    await model_work.stop(timeout_s=MODEL_WORK_STOP_S)
    await app.state.hub.stop()
    app.state.db.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="designgate",
        summary="Design review before code: decisions for every failure mode, then a gate.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = Database(settings)
    # Read once: a malformed template file stops the start with its file and field named.
    app.state.templates = templates.load_catalog(settings.templates_dir)
    app.state.hub = live.make_hub(app.state.db.engine, runner=app.state.db.runner)
    app.state.open_streams = OpenStreams(settings.max_streams_per_user)
    app.state.model_calls = ModelCalls(settings)
    for factory in (app.state.db.reader, app.state.db.writer):
        live.connect(factory, app.state.hub)
    web.install_form_limit(app, max_body_bytes=settings.max_body_bytes)
    problems.install(
        app,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.request_body_timeout_s,
    )
    app.include_router(health_router)
    api.install(app)
    web.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(HeadAsGet)
    if settings.forwarded_allow_ips:
        # Behind a reverse proxy every connection comes from the proxy: sign-in throttling
        # would take every client for one address, and cookies sent over its HTTPS would lack
        # Secure. Added last, so it runs first: everything after sees the client's address.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app
