"""Typed dependencies shared by the API and the HTML routers."""

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Annotated, TypeVar

import anyio
from fastapi import BackgroundTasks, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.errors import Forbidden, ServerBusy, Unauthorized
from app.live import Hub
from app.llm import ModelEndpoint, endpoint_from_settings
from app.models import User
from app.models.enums import Role
from app.services import users
from app.services.model_calls import ModelCalls
from app.services.templates import TemplateCatalog
from app.stream_access import AccessWatch, OpenStreams

T = TypeVar("T")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger(__name__)


# Dependencies that touch no database are async so they run on the event loop
# instead of costing a thread-pool hop on every request.
async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: commit on success, roll back on any error.

    Admitted through the database's request slots (see ``Database.admitted``).
    """
    db: Database = request.app.state.db
    write = request.method not in SAFE_METHODS
    factory = db.writer if write else db.reader
    async with db.admitted(write=write):
        session = factory()
        try:
            yield session
        except BaseException:
            await _in_own_thread(_end, session, False)
            raise
        await _in_own_thread(_end, session, True)


def _end(session: Session, commit: bool) -> None:
    with session:  # closes, giving the connection back
        if not commit:
            session.rollback()
            return
        try:
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def _in_own_thread(function: Callable[..., None], *args: object) -> None:
    """Off the worker threads' shared limit and safe from cancellation, as FastAPI ends sync
    dependencies: waiting for a free thread while holding a connection is the deadlock the
    request slots are there to prevent."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(function, *args, limiter=anyio.CapacityLimiter(1))


DbDep = Annotated[Database, Depends(get_db)]


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function" commits before the response is sent, so background work and
# the client's next request both see what this request wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API token from `designgate token create`.")


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def require_bearer(credentials: BearerDep) -> HTTPAuthorizationCredentials:
    """401 at once, before the path is validated, when no token is sent: as with CurrentUser."""
    if credentials is None:
        raise _no_token()
    return credentials


RequiredBearerDep = Annotated[HTTPAuthorizationCredentials, Depends(require_bearer)]


def get_current_user(
    request: Request,
    session: SessionDep,
    db: DbDep,
    credentials: BearerDep,
    after_response: BackgroundTasks,
) -> User:
    with _checking_before_writing(request, db, session):
        found = users.user_for_token(session, _bearer_token(credentials))
        if found is None:
            raise _unknown_or_revoked()
    user, token = found
    if users.token_needs_touch(token):
        # After the response, when this request's connection is back in the pool: a request
        # holding one connection while it waits for a second deadlocks the pool once enough
        # of them arrive together (a burst of event streams did), and a write request would
        # wait on its own write lock.
        after_response.add_task(_touch_token_when_admitted, db, token.id)
    return user


def _checking_before_writing(
    request: Request, db: Database, session: Session
) -> AbstractContextManager[None]:
    """A write request reads its caller before it takes the write lock (``reading_first``)."""
    if request.method in SAFE_METHODS:
        return contextlib.nullcontext()
    return db.reading_first(session)


TOKEN_REFUSAL = "The API token is unknown or revoked"  # noqa: S105 (a message)


def _unknown_or_revoked() -> Unauthorized:
    return Unauthorized(TOKEN_REFUSAL)


def token_watch(db: Database, user_id: int, plain: str) -> AccessWatch:
    """Whether an event stream's token still holds, for streams that outlast the request."""
    return AccessWatch(user_id, lambda: _token_is_live(db, plain))


def _token_is_live(db: Database, plain: str) -> bool:
    with db.reads() as session:
        return users.caller_for_token(session, plain) is not None


async def token_refusal(request: Request) -> Unauthorized | None:
    """The 401 that authenticating this request's bearer token gives, or None for a live token.

    For a request found malformed before its route authenticated the caller: FastAPI judges a
    JSON body before any dependency, and a route's path, query and body after its dependencies,
    which on the routes that authenticate in their endpoint (``authenticated_read``) check
    only that a token was sent."""
    credentials = await _bearer(request)
    if credentials is None:
        return _no_token()
    db: Database = request.app.state.db
    live = await run_admitted(db, _token_is_live, db, credentials.credentials)
    return None if live else _unknown_or_revoked()


def _no_token() -> Unauthorized:
    return Unauthorized("Send an API token as 'Authorization: Bearer TOKEN'")


def _bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise _no_token()
    return credentials.credentials


async def authenticated_read(
    request: Request,
    credentials: HTTPAuthorizationCredentials,
    work: Callable[[Session, users.Caller], T],
) -> T:
    """Authenticate and run ``work`` in one read (``Database.reads``) on one worker thread.

    For the hottest read routes: the usual chain (session, current user, endpoint, commit)
    costs four thread-pool hops, which is most of the time of a small request. The
    transaction is owned here as it is by ``get_session``: committed, or rolled back on error.
    """
    db: Database = request.app.state.db
    return await run_admitted(db, _authenticated_read, db, credentials, work)


def _authenticated_read(
    db: Database,
    credentials: HTTPAuthorizationCredentials,
    work: Callable[[Session, users.Caller], T],
) -> T:
    token: users.TokenUse | None = None
    try:
        with db.reads() as session:
            found = users.caller_for_token(session, credentials.credentials)
            if found is None:
                raise _unknown_or_revoked()
            caller, token = found
            return work(session, caller)
    finally:
        # Once the read's connection is back in the pool (see get_current_user).
        if token is not None and users.token_needs_touch(token):
            _touch_token(db, token.id)


async def run_admitted(
    db: Database, function: Callable[..., T], *args: object, write: bool = False
) -> T:
    """``function(*args)`` on a worker thread, once the database admits one more request
    (see ``Database.admitted``)."""
    async with db.admitted(write=write):
        return await run_in_threadpool(function, *args)


async def _touch_token_when_admitted(db: Database, token_id: int) -> None:
    try:
        await run_admitted(db, _touch_token, db, token_id, write=True)
    except ServerBusy:  # the response is sent; the token's next use records it
        log.warning("could not record the use of API token %d: the server is busy", token_id)


def _touch_token(db: Database, token_id: int) -> None:
    """Its own short write, so read requests stay read-only transactions."""
    try:
        with db.transaction() as session:
            users.touch_token(session, token_id=token_id)
    except OperationalError:
        log.warning("could not record the use of API token %d", token_id)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def api_stream_held(request: Request, user: CurrentUser) -> AsyncIterator[None]:
    """Counts an API event stream against its user's limit until the stream ends (a
    dependency with the request's scope: it exits once the response is over)."""
    with open_streams(request).one_more(user.id):
        yield


def open_streams(request: Request) -> OpenStreams:
    streams: OpenStreams = request.app.state.open_streams
    return streams


async def require_writer(user: CurrentUser) -> User:
    if user.role == Role.VIEWER:
        raise Forbidden("Viewers can read but not change anything")
    return user


async def require_admin(user: CurrentUser) -> User:
    if user.role != Role.ADMIN:
        raise _admins_only()
    return user


async def admin_before_body(request: Request, credentials: RequiredBearerDep) -> None:
    """The caller is an admin, checked in a read of its own before a route reads a body that
    may be far larger than the general limit: otherwise anyone could make the server take in
    that much before hearing 401. The route still takes ``Admin`` for its write."""
    await authenticated_read(request, credentials, _must_be_admin)


def _must_be_admin(session: Session, caller: users.Caller) -> None:
    if caller.role != Role.ADMIN:
        raise _admins_only()


def _admins_only() -> Forbidden:
    return Forbidden("Only an admin can do this")


Writer = Annotated[User, Depends(require_writer)]
Admin = Annotated[User, Depends(require_admin)]


async def get_model_endpoint(settings: SettingsDep) -> ModelEndpoint | None:
    return endpoint_from_settings(settings)


EndpointDep = Annotated[ModelEndpoint | None, Depends(get_model_endpoint)]


def get_model_calls(request: Request) -> ModelCalls:
    calls: ModelCalls = request.app.state.model_calls
    return calls


ModelCallsDep = Annotated[ModelCalls, Depends(get_model_calls)]


def get_template_catalog(request: Request) -> TemplateCatalog:
    """The built-in and file templates the app loaded at start-up."""
    catalog: TemplateCatalog = request.app.state.templates
    return catalog


TemplatesDep = Annotated[TemplateCatalog, Depends(get_template_catalog)]
