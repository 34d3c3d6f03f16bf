"""Dependencies of the HTML routes: first-run setup, the signed-in user, CSRF."""

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.db import Database
from app.deps import SAFE_METHODS, SessionDep, open_streams, run_admitted
from app.errors import Forbidden
from app.models import User
from app.models.enums import Role
from app.services import users
from app.web.forms import read_form

T = TypeVar("T")
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
CSRF_REFUSAL = (
    "This request was refused: its security token is missing or out of date "
    "(the page may be old, or the request did not come from this site). "
    "Reload the page and try again."
)


@dataclass(frozen=True)
class SignedIn:
    """Who is signed in, as plain values: pages and live streams render it after the
    request's database session has closed (or rolled back on an error)."""

    id: int
    name: str
    email: str
    role: str


class SetupRequired(Exception):
    """No user exists yet: everything leads to the first-run setup page."""


class LoginRequired(Exception):
    """The page needs a signed-in user."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def login_url(self) -> str:
        return "/login?next=" + quote(self.next_path, safe="/")


async def require_setup_done(request: Request) -> None:
    # Users are never deleted, so once one exists the answer cannot change: after that this
    # costs every page nothing (no session, no worker thread).
    if getattr(request.app.state, "setup_done", False):
        return
    db: Database = request.app.state.db
    if await run_in_threadpool(_count_users, db) == 0:
        raise SetupRequired()
    request.app.state.setup_done = True


def _count_users(db: Database) -> int:
    with db.transaction(write=False) as session:
        return users.count_users(session)


async def check_csrf(request: Request) -> None:
    """Every write carries the session's token, in a header (htmx) or a form field."""
    if request.method in SAFE_METHODS:
        return
    # Browsers say where a request came from; a write started by another site is refused
    # even if it somehow carried a valid token.
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise Forbidden(CSRF_REFUSAL)
    # Parsed here whether or not the token is in it, so that the route's form is parsed with
    # the pages' field limit.
    form = await read_form(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    expected = request.session.get("csrf")
    if not (isinstance(expected, str) and sent and hmac.compare_digest(sent, expected)):
        raise Forbidden(CSRF_REFUSAL)


class Account(Protocol):
    """What signing in by cookie needs of a user: a ``User``, or ``users.Account`` (its columns)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def session_epoch(self) -> int: ...


def optional_user(request: Request, session: SessionDep) -> User | None:
    user_id = request.session.get("uid")
    found = None
    if isinstance(user_id, int):
        found = users.user_in_session(session, user_id, browser_session_id(request))
    user, session_ended = found if found is not None else (None, False)
    return user if _admit(request, user, session_ended=session_ended) else None


def browser_session_id(request: Request) -> str:
    """The id sign-in gave this browser session ("" for a cookie without one, which no
    ended session has)."""
    session_id = request.session.get("sid")
    return session_id if isinstance(session_id, str) else ""


def _admit(request: Request, account: Account | None, *, session_ended: bool) -> SignedIn | None:
    """The cookie's user, if their session still holds; the cookie forgets them if not."""
    # A session signed out, on its own device or with all of its user's (a copied or replayed
    # cookie), is over.
    if account is not None and (
        session_ended
        or not account.is_active
        or request.session.get("epoch") != account.session_epoch
    ):
        account = None
    if account is None and request.session.get("uid") is not None:
        request.session.pop("uid", None)
    signed_in = SignedIn(account.id, account.name, account.email, account.role) if account else None
    request.state.user = signed_in
    return signed_in


# The checks below touch no database: async, so they cost no worker-thread hop.
async def require_user(
    request: Request, user: Annotated[User | None, Depends(optional_user)]
) -> User:
    if user is None:
        raise _login_required(request)
    return user


def _login_required(request: Request) -> LoginRequired:
    return LoginRequired(return_path(request))


def return_path(request: Request) -> str:
    """Where signing in again should lead: the page itself for a page; for a form sent, an
    htmx fragment or a live stream, the page it came from (a POST's address is no page)."""
    if request.method in SAFE_METHODS and not _from_a_page(request):
        path = request.url.path
        return path + "?" + request.url.query if request.url.query else path
    for header in ("HX-Current-URL", "Referer"):
        found = _same_site_path(request, request.headers.get(header))
        if found is not None:
            return found
    return "/"


def _from_a_page(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" or is_event_stream(request)


def is_event_stream(request: Request) -> bool:
    """A live stream's request (an EventSource asks for this type)."""
    return "text/event-stream" in request.headers.get("accept", "")


def _same_site_path(request: Request, url: str | None) -> str | None:
    """The path and query of ``url`` if it is an address on this site."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and (parts.netloc != request.url.netloc or parts.scheme != request.url.scheme):
        return None
    path = parts.path + ("?" + parts.query if parts.query else "")
    return path if safe_next(path) == path else None


def safe_next(next_path: str | None) -> str:
    """Only paths on this site: an open redirect would help phishing."""
    if next_path and next_path.startswith("/") and not next_path.startswith(("//", "/\\")):
        return next_path
    return "/"


async def require_writer(user: Annotated[User, Depends(require_user)]) -> User:
    if user.role == Role.VIEWER:
        raise Forbidden("You are a viewer: you can read everything but not change anything.")
    return user


async def require_admin(user: Annotated[User, Depends(require_user)]) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("Only an admin can do this.")
    return user


MaybeUser = Annotated[User | None, Depends(optional_user)]
WebUser = Annotated[User, Depends(require_user)]
WebWriter = Annotated[User, Depends(require_writer)]
WebAdmin = Annotated[User, Depends(require_admin)]


async def page_stream_held(request: Request, user: WebUser) -> AsyncIterator[None]:
    """Counts a page's live stream against its user's limit until the stream ends."""
    with open_streams(request).one_more(user.id):
        yield


async def signed_in_read(request: Request, work: Callable[[Session, SignedIn], T]) -> T:
    """Sign the cookie's user in and run ``work`` in one read (``Database.reads``) on one
    worker thread, as ``WebUser`` and ``SessionDep`` would in three hops: for the pages read
    most.

    Redirects to sign-in as ``WebUser`` does. The transaction is owned here as it is by
    ``get_session``: committed, or rolled back on error.
    """
    db: Database = request.app.state.db
    return await run_admitted(db, _signed_in_read, request, db, work)


def readmit(request: Request, db: Database) -> SignedIn | None:
    """The cookie's user read again, as on every request: None once their session has
    ended (signed out anywhere, deactivated). For live streams, which outlast the request."""
    with db.reads() as session:
        return _cookie_user(request, session)


def _cookie_user(request: Request, session: Session) -> SignedIn | None:
    user_id = request.session.get("uid")
    found = None
    if isinstance(user_id, int):
        found = users.account(session, user_id, browser_session_id(request))
    return _admit(request, found, session_ended=found is not None and found.session_ended)


def _signed_in_read(request: Request, db: Database, work: Callable[[Session, SignedIn], T]) -> T:
    with db.reads() as session:
        signed_in = _cookie_user(request, session)
        if signed_in is None:
            raise _login_required(request)
        return work(session, signed_in)
