"""Dependencies of the HTML routes: first-run setup, the signed-in user, CSRF."""

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from app.deps import SAFE_METHODS, SessionDep
from app.errors import Forbidden
from app.models import User
from app.models.enums import Role
from app.services import users

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


def require_setup_done(request: Request, session: SessionDep) -> None:
    # Users are never deleted, so once one exists the answer cannot change.
    if getattr(request.app.state, "setup_done", False):
        return
    if users.count_users(session) == 0:
        raise SetupRequired()
    request.app.state.setup_done = True


async def check_csrf(request: Request) -> None:
    """Every write carries the session's token, in a header (htmx) or a form field."""
    if request.method in SAFE_METHODS:
        return
    # Browsers say where a request came from; a write started by another site is refused
    # even if it somehow carried a valid token.
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise Forbidden(CSRF_REFUSAL)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    expected = request.session.get("csrf")
    if not (isinstance(expected, str) and sent and hmac.compare_digest(sent, expected)):
        raise Forbidden(CSRF_REFUSAL)


def optional_user(request: Request, session: SessionDep) -> User | None:
    user_id = request.session.get("uid")
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    # A session from before the user signed out (a copied or replayed cookie) is over.
    if user is not None and (
        not user.is_active or request.session.get("epoch") != user.session_epoch
    ):
        user = None
    if user is None and user_id is not None:
        request.session.pop("uid", None)
    request.state.user = SignedIn(user.id, user.name, user.email, user.role) if user else None
    return user


def require_user(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        raise LoginRequired(path if request.method in SAFE_METHODS else "/")
    return user


def require_writer(user: Annotated[User, Depends(require_user)]) -> User:
    if user.role == Role.VIEWER:
        raise Forbidden("You are a viewer: you can read everything but not change anything.")
    return user


def require_admin(user: Annotated[User, Depends(require_user)]) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("Only an admin can do this.")
    return user


MaybeUser = Annotated[User | None, Depends(optional_user)]
WebUser = Annotated[User, Depends(require_user)]
WebWriter = Annotated[User, Depends(require_writer)]
WebAdmin = Annotated[User, Depends(require_admin)]
