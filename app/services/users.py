"""Users, passwords (Argon2id) and API tokens (only their SHA-256 is stored)."""

import functools
import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Select, bindparam, delete, exists, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from app import live
from app.db import utcnow
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.models import ApiToken, EndedWebSession, User
from app.models.enums import Role
from app.models.user import MAX_EMAIL_LENGTH, MAX_LABEL_LENGTH, MAX_NAME_LENGTH
from app.schemas.common import is_storable
from app.services import audit
from app.stream_access import ACCOUNT, account_channel

_hasher = PasswordHasher()  # argon2-cffi's default type is Argon2id
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
TOKEN_PREFIX = "dg_"  # noqa: S105 (a marker that makes leaked tokens easy to grep for)
MIN_PASSWORD_LENGTH = 8
# Argon2 takes any length; a bound keeps a pasted file from being taken for a password.
MAX_PASSWORD_LENGTH = 1024
# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _account_text(value: str, *, field: str, what: str, max_length: int) -> str:
    """``value`` if a database can store it: within ``max_length``, without NUL (which
    PostgreSQL's text cannot hold; a form can send it) or a lone surrogate (which Python
    makes of bytes that are not UTF-8 in a command's arguments and standard input)."""
    # Past the column's length PostgreSQL refused the insert (a 500) and SQLite stored it.
    if len(value) > max_length:
        raise InvalidInput(f"The {what} may be at most {max_length} characters", field=field)
    if not is_storable(value):
        raise InvalidInput(
            f"The {what} contains a character that is not allowed (NUL, or bytes that are "
            "not UTF-8)",
            field=field,
        )
    return value


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def find_by_email(session: Session, email: str) -> User | None:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not is_storable(email):
        return None  # no account has it, and PostgreSQL refuses NUL even in a comparison
    return session.scalar(select(User).where(User.email == email))


def get_by_email(session: Session, email: str) -> User:
    user = find_by_email(session, email)
    if user is None:
        raise NotFound(f"No user with email {email!r}")
    return user


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: Role,
    password: str,
    actor: User | None = None,
) -> User:
    email = _account_text(
        email.strip().lower(), field="email", what="email address", max_length=MAX_EMAIL_LENGTH
    )
    if not _EMAIL.match(email):
        raise InvalidInput("Not an email address", field="email")
    name = _account_text(name.strip(), field="name", what="name", max_length=MAX_NAME_LENGTH)
    password = _account_text(
        password, field="password", what="password", max_length=MAX_PASSWORD_LENGTH
    )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"The password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if not password.strip():
        # Eight spaces passed the length check: a password anyone could guess first.
        raise InvalidInput(
            "The password cannot be blank: spaces alone are not a password", field="password"
        )
    taken = Conflict(f"A user with email {email!r} already exists")
    if find_by_email(session, email) is not None:
        raise taken
    user = User(
        email=email,
        name=name or email[:MAX_NAME_LENGTH],
        role=role,
        password_hash=hash_password(password),
    )
    try:
        # Two at once both find the address free; on PostgreSQL the second insert then
        # breaks the unique index (SQLite's writers take turns).
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise taken from exc
    audit.record(
        session,
        actor=actor,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        after={"email": email, "role": str(role)},
    )
    return user


def create_token(
    session: Session, *, user: User, label: str = "", actor: User | None = None
) -> tuple[ApiToken, str]:
    """A new API token; the plain text is returned once and never stored."""
    if not user.is_active:
        # Every use of it would be refused as unknown or revoked (only active users' tokens
        # are live), which reads as a mistyped token rather than the account's state. A
        # conflict, not invalid input: the pages show it whatever form asked.
        raise Conflict(
            f"{user.email} is deactivated: a token of theirs would be refused at every use, "
            "so none was made"
        )
    label = _account_text(label.strip(), field="label", what="label", max_length=MAX_LABEL_LENGTH)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, label=label, token_sha256=token_digest(plain))
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor or user,
        action="token.created",
        entity_type="api_token",
        entity_id=token.id,
        after={"label": label},
    )
    return token, plain


class TokenUse(NamedTuple):
    """What a request needs of its API token: which one, and when it was last recorded."""

    id: int
    last_used_at: datetime | None


class Caller(NamedTuple):
    """Who calls, without loading the user: enough for routes that only read."""

    user_id: int
    role: Role


def _live_token_statement(*columns: Any) -> Select[Any]:
    """The token with this digest, unrevoked, of an active user: the one rule for both reads."""
    return (
        select(*columns)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_sha256 == bindparam("digest"),
            ApiToken.revoked_at.is_(None),
            User.is_active.is_(True),
        )
    )


# Built once, with the token read as two columns rather than an entity: every API request
# runs one of them, and composing a statement or loading an object cost more than the query.
_USER_BY_TOKEN = _live_token_statement(User, ApiToken.id, ApiToken.last_used_at)
_CALLER_BY_TOKEN = _live_token_statement(User.id, User.role, ApiToken.id, ApiToken.last_used_at)


def user_for_token(session: Session, plain: str) -> tuple[User, TokenUse] | None:
    """The active user behind a live token, and the token's use."""
    row = session.execute(_USER_BY_TOKEN, {"digest": token_digest(plain)}).first()
    if row is None:
        return None
    user, token_id, last_used_at = row
    return user, TokenUse(token_id, last_used_at)


def caller_for_token(session: Session, plain: str) -> tuple[Caller, TokenUse] | None:
    """As ``user_for_token``, read as plain columns on the session's connection."""
    digest = token_digest(plain)
    row = session.connection().execute(_CALLER_BY_TOKEN, {"digest": digest}).first()
    if row is None:
        return None
    user_id, role, token_id, last_used_at = row
    return Caller(user_id, Role(role)), TokenUse(token_id, last_used_at)


class Account(NamedTuple):
    """A user as signing in by cookie reads them: plain columns, no ORM object."""

    id: int
    name: str
    email: str
    role: str
    is_active: bool
    session_epoch: int
    session_ended: bool  # the browser session asked about was signed out on its own


def _session_ended() -> ColumnElement[bool]:
    """Whether the browser session ``session_id`` was signed out: read with its user, so that
    it costs no statement of its own."""
    ended = exists().where(EndedWebSession.session_id == bindparam("session_id"))
    return ended.label("session_ended")


_ACCOUNT = select(
    User.id,
    User.name,
    User.email,
    User.role,
    User.is_active,
    User.session_epoch,
    _session_ended(),
).where(User.id == bindparam("user_id"))


def account(session: Session, user_id: int, session_id: str) -> Account | None:
    """The user with this id as plain columns (loading a User costs more than the query),
    and whether their browser session ``session_id`` was signed out."""
    params = {"user_id": user_id, "session_id": session_id}
    row = session.connection().execute(_ACCOUNT, params).first()
    return Account(*row) if row is not None else None


def user_in_session(session: Session, user_id: int, session_id: str) -> tuple[User, bool] | None:
    """``account`` as an ORM ``User``, for the routes that change it or pass it on."""
    stmt = select(User, _session_ended()).where(User.id == user_id)
    row = session.execute(stmt, {"session_id": session_id}).first()
    return (row[0], bool(row[1])) if row is not None else None


def token_needs_touch(token: TokenUse) -> bool:
    last = token.last_used_at
    return last is None or utcnow() - last > LAST_USED_RESOLUTION


def touch_token(session: Session, *, token_id: int) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the email is unknown keeps both answers equally slow."""
    return _hasher.hash("designgate-no-such-user")


def password_checks_out(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. With no hash (no such user) the same
    Argon2 work is done against a dummy, so both answers take as long, and it is False."""
    # Bytes: a password no form can send (a lone surrogate) is still checked, and fails.
    secret = password.encode("utf-8", "surrogatepass")
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), secret)
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def end_sessions(session: Session, *, user: User) -> None:
    """Every browser session of this user stops working, copies of its cookie included.

    Cookies are signed, not stored, so clearing one in the browser would leave a copy valid
    for its whole lifetime; moving the user's epoch on invalidates them all at once.
    """
    user.session_epoch += 1
    session.flush()
    account_changed(session, user_id=user.id)


def end_browser_session(
    session: Session, *, user_id: int, session_id: str, cookie_lifetime: timedelta
) -> None:
    """This browser session stops working, copies of its cookie included; the user's other
    sessions go on.

    Its id is kept until a cookie signed before now has expired (``cookie_lifetime``); ids
    kept longer than that are cleared here, so the table holds about two weeks of sign-outs.
    """
    now = utcnow()
    session.execute(delete(EndedWebSession).where(EndedWebSession.ended_at < now - cookie_lifetime))
    # The same cookie signed out twice at once (two tabs, two servers) is one ending, not a
    # conflict.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    ending = dialect.insert(EndedWebSession).values(session_id=session_id, ended_at=now)
    session.execute(ending.on_conflict_do_nothing())
    account_changed(session, user_id=user_id)


def account_changed(session: Session, *, user_id: int) -> None:
    """Tell the user's open live streams to check their sign-in again (after the commit)."""
    live.announce(session, account_channel(user_id), {"type": ACCOUNT})


def create_first_admin(session: Session, *, email: str, name: str, password: str) -> User:
    """First-run setup: only while the instance has no user at all."""
    _one_setup_at_a_time(session)
    if count_users(session) > 0:
        raise Conflict("This instance is already set up; sign in instead")
    return create_user(session, email=email, name=name, role=Role.ADMIN, password=password)


# Any fixed numbers: they name the locks that first-run setups, and changes that could
# take away the last active admin, take turns on.
_SETUP_LOCK = 0x5E7_0F_D6
_ADMINS_LOCK = 0xAD_41_45


def _one_setup_at_a_time(session: Session) -> None:
    """Two setups submitted at once would each count no users on PostgreSQL, where the
    other's admin is not yet committed, and make two admins. The second now waits for the
    first's transaction to end, then counts again."""
    _take_turns(session, _SETUP_LOCK)


def _take_turns(session: Session, key: int) -> None:
    """Hold ``key`` until this transaction ends, so that another transaction counting what
    this one changes waits and counts again. SQLite's write transactions already run one
    at a time; on PostgreSQL they need the lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def change_role(session: Session, *, user_id: int, role: Role, actor: User) -> User:
    """Change a user's role; the instance always keeps at least one active admin."""
    user = get_user(session, user_id)
    if user.role == role:
        return user
    if user.role == Role.ADMIN and _active_admin_count(session) <= 1:
        raise Conflict("This is the last admin; make someone else an admin first")
    before = {"role": user.role}
    user.role = role
    session.flush()
    account_changed(session, user_id=user.id)
    audit.record(
        session,
        actor=actor,
        action="user.role_changed",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after={"role": str(role)},
    )
    return user


def set_active(session: Session, *, user_id: int, active: bool, actor: User | None) -> User:
    """Deactivate or reactivate a user (``actor`` None is the server's operator).

    Deactivation takes effect at once: their browser sessions end (reactivation does not
    bring them back), their API tokens are refused until they are reactivated, and their
    open live streams end. The instance always keeps at least one active admin.
    """
    user = get_user(session, user_id)
    if user.is_active == active:
        return user
    if not active and user.role == Role.ADMIN and _active_admin_count(session) <= 1:
        raise Conflict(f"{user.email} is the last active admin; make someone else an admin first")
    user.is_active = active
    if active:
        session.flush()
    else:
        end_sessions(session, user=user)  # tells their open streams, too
    audit.record(
        session,
        actor=actor,
        action="user.reactivated" if active else "user.deactivated",
        entity_type="user",
        entity_id=user.id,
        before={"is_active": not active},
        after={"is_active": active},
    )
    return user


def _active_admin_count(session: Session) -> int:
    """Two admins demoting or deactivating each other at once would each count the other
    (not yet committed) and leave no active admin; the second now waits and counts one."""
    _take_turns(session, _ADMINS_LOCK)
    stmt = select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.is_active)
    return session.scalar(stmt) or 0


def list_all_tokens(session: Session) -> list[ApiToken]:
    """Every token with its owner, newest first (for admins)."""
    stmt = select(ApiToken).options(joinedload(ApiToken.user)).order_by(ApiToken.id.desc())
    return list(session.scalars(stmt))


def list_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """The user's API tokens, revoked ones included, oldest first."""
    stmt = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
    return list(session.scalars(stmt))


def revoke_token(session: Session, *, token_id: int, actor: User | None) -> ApiToken:
    """Revoke a token; its owner or an admin may (``actor`` None is the server's operator).

    The next request with it is refused: tokens are looked up on every request, not cached.
    Revoking a revoked token changes nothing.
    """
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"API token {token_id} does not exist")
    if actor is not None and actor.role != Role.ADMIN and token.user_id != actor.id:
        raise Forbidden("Only its owner or an admin can revoke an API token")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="token.revoked",
            entity_type="api_token",
            entity_id=token.id,
            after={"user_id": token.user_id, "label": token.label},
        )
        session.flush()
        account_changed(session, user_id=token.user_id)
    return token
