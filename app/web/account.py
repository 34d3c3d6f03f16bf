"""First-run setup, sign in and sign out."""

import secrets
from datetime import timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.db import Database
from app.deps import DbDep, SessionDep, SettingsDep, run_admitted
from app.errors import Conflict, InvalidInput
from app.models import User
from app.services import login_throttle, users
from app.web.deps import MaybeUser, SignedIn, browser_session_id, check_csrf, safe_next
from app.web.errors import redirect
from app.web.forms import service_field_error
from app.web.sessions import MAX_AGE_S
from app.web.templating import csrf_token, page

router = APIRouter(dependencies=[Depends(check_csrf)])
# Argon2id takes 64 MiB and about a tenth of a second of a core per check. Checked outside
# the write transaction, a burst of sign-ins would otherwise take every worker thread at once.
PASSWORD_CHECKS_AT_ONCE = 2


def sign_in(request: Request, session: Session, user: User) -> None:
    """A fresh session (new id and CSRF token) so nothing from before the login survives.

    A session this browser was still signed in with ends, as a sign-out would end it: a copy
    of its cookie (another tab's request in flight, a shared screen's) must not go on as the
    user signed in before."""
    _end_this_browser_session(request, session)
    request.session.clear()
    request.session.update(
        uid=user.id,
        sid=secrets.token_urlsafe(16),
        csrf=secrets.token_urlsafe(32),
        epoch=user.session_epoch,
    )
    request.state.user = SignedIn(user.id, user.name, user.email, user.role)


@router.get("/setup", response_class=HTMLResponse)
def setup_form(request: Request, session: SessionDep) -> Response:
    """First run: create the first admin."""
    if users.count_users(session) > 0:
        return redirect(request, "/login")
    return page(request, "setup.html", {"values": {}, "errors": {}})


@router.post("/setup", response_class=HTMLResponse)
def setup(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """Create the first admin and sign them in; refused once any user exists."""
    values = {"email": email, "name": name}
    if password != password_again:
        errors = {"password_again": "The two passwords differ."}
        return page(request, "setup.html", {"values": values, "errors": errors}, status_code=422)
    try:
        user = users.create_first_admin(session, email=email, name=name, password=password)
    except InvalidInput as exc:
        errors = service_field_error(exc)
        return page(request, "setup.html", {"values": values, "errors": errors}, status_code=422)
    except Conflict:
        return redirect(request, "/login")
    request.app.state.setup_done = True
    sign_in(request, session, user)
    return redirect(request, "/")


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, session: SessionDep, user: MaybeUser, next: str | None = None
) -> Response:
    """Sign in with email and password."""
    if users.count_users(session) == 0:
        return redirect(request, "/setup")
    if user is not None:
        return redirect(request, safe_next(next))
    model = request.app.state.settings.model
    return page(request, "login.html", {"next": safe_next(next), "error": None, "model": model})


async def checked_password(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> login_throttle.Checked:
    """The sign-in's look-up (a read, admitted as reads are) and its Argon2id check, both
    before the request takes its write session (see app/services/login_throttle.py)."""
    limits = login_throttle.Limits.from_settings(settings)
    address = _client_address(request)
    candidate = await run_admitted(db, _look_up, db, email, address, limits)
    if candidate.retry_after_s is not None:
        # Refused unchecked: no Argon2, so no thread, and no wait behind other sign-ins' checks.
        return login_throttle.check(candidate, password)
    limiter: anyio.CapacityLimiter = request.app.state.password_checks
    return await anyio.to_thread.run_sync(
        login_throttle.check, candidate, password, limiter=limiter
    )


def _look_up(
    db: Database, email: str, address: str, limits: login_throttle.Limits
) -> login_throttle.Candidate:
    with db.reads() as session:
        return login_throttle.look_up(session, email=email, address=address, limits=limits)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    # Before the session: the password is checked before the write transaction begins.
    checked: Annotated[login_throttle.Checked, Depends(checked_password)],
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password (Argon2id) unless sign-in is throttled, and start a new session."""
    limits = login_throttle.Limits.from_settings(settings)
    outcome = login_throttle.settle(session, checked, limits=limits)
    context = {"next": safe_next(next), "email": email}
    if outcome.retry_after_s is not None:
        context["error"] = _throttled_message(outcome.retry_after_s)
        headers = {"Retry-After": str(outcome.retry_after_s)}
        return page(request, "login.html", context, status_code=429, headers=headers)
    if outcome.user is None:
        context["error"] = "Wrong email or password."
        return page(request, "login.html", context, status_code=401)
    sign_in(request, session, outcome.user)
    return redirect(request, safe_next(next))


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _throttled_message(seconds: int) -> str:
    """The same words whether or not the account exists, so it reveals nothing."""
    minutes = max(1, round(seconds / 60))
    wait = "a minute" if minutes == 1 else f"{minutes} minutes"
    return (
        "Too many failed sign-ins for this account or from this address. "
        f"Sign-in is paused; try again in about {wait}."
    )


@router.get("/session/token")
def session_token(request: Request, user: MaybeUser) -> Response:
    """The signed-in session's form token, for a page left open across a new sign-in (it
    keeps what was typed there); 204 when nobody is signed in."""
    if user is None:
        return Response(status_code=204)
    return JSONResponse({"csrf_token": csrf_token(request)})


@router.post("/logout")
def logout(request: Request, session: SessionDep, user: MaybeUser) -> Response:
    """End this browser's session (copies of its cookie included); the user's sessions in
    other browsers go on."""
    if user is not None and not _end_this_browser_session(request, session):
        # A cookie with no id of its own can only be ended with all the others.
        users.end_sessions(session, user=user)
    request.session.clear()
    return redirect(request, "/login")


def _end_this_browser_session(request: Request, session: Session) -> bool:
    """End the session this browser's cookie names, copies of the cookie included; False
    when the cookie names none (nobody signed in, or a cookie signed without an id)."""
    user_id = request.session.get("uid")
    session_id = browser_session_id(request)
    if not isinstance(user_id, int) or not session_id:
        return False
    lifetime = timedelta(seconds=MAX_AGE_S)
    users.end_browser_session(
        session, user_id=user_id, session_id=session_id, cookie_lifetime=lifetime
    )
    return True


@router.post("/logout/everywhere")
def logout_everywhere(request: Request, session: SessionDep, user: MaybeUser) -> Response:
    """End every session of the user, in every browser (a device left signed in, a cookie
    that may have been copied)."""
    if user is not None:
        users.end_sessions(session, user=user)
    request.session.clear()
    return redirect(request, "/login")
