"""Sign-in throttling against password guessing.

Failed sign-ins are rows in ``login_attempts``, counted per account (the normalised email,
known or not) and per client address over a sliding window. The count lives in the database,
so every process serving one database sees the same count. Past the limit a sign-in is refused
before its password is checked: a guess gains nothing and costs no Argon2 time. The refusal
only lasts until old failures leave the window (a throttle, never a permanent lock, so nobody
can lock an account for good by failing on purpose), refused tries are not counted (waiting
out the window always works), and an unknown email gets exactly the answer a known one gets.

A sign-in goes in three steps: ``look_up`` reads the count and the account, ``check`` runs
Argon2id outside any transaction (a tenth of a second here; inside the write transaction it
held SQLite's write lock and the server's one write slot that long), and ``settle`` counts
again under the lock and decides. Guesses sent at once may all be checked, but only as many
as the limit allows are answered as wrong passwords; the rest are refused, right or not.
"""

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.models import LoginAttempt, User
from app.services import users


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(
            per_account=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            window=timedelta(seconds=settings.login_window_s),
        )


@dataclass(frozen=True)
class Keys:
    """What a sign-in is counted against, as the digests stored in ``login_attempts``."""

    account: str
    address: str

    @classmethod
    def of(cls, *, email: str, address: str) -> "Keys":
        return cls(_digest("account", email.strip().lower()), _digest("address", address))


@dataclass(frozen=True)
class SignIn:
    """The outcome: the user, or None; ``retry_after_s`` is set when the try was refused."""

    user: User | None
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Candidate:
    """What ``look_up`` found: a refusal, or the account's stored hash (None: no active user)."""

    keys: Keys
    retry_after_s: int | None = None
    user_id: int | None = None
    password_hash: str | None = None


@dataclass(frozen=True)
class Checked:
    """A candidate whose password was checked (``matched`` is False for a refused one)."""

    candidate: Candidate
    matched: bool


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def look_up(session: Session, *, email: str, address: str, limits: Limits) -> Candidate:
    """A read: refused if throttled now (without reading the account), else whose hash to try."""
    keys = Keys.of(email=email, address=address)
    wait = retry_after(session, keys=keys, limits=limits, now=utcnow())
    if wait is not None:
        return Candidate(keys, retry_after_s=wait)
    user = users.find_by_email(session, email)
    if user is None or not user.is_active:
        return Candidate(keys)
    return Candidate(keys, user_id=user.id, password_hash=user.password_hash)


def check(candidate: Candidate, password: str) -> Checked:
    """Argon2id, outside any transaction; a refused candidate is not checked."""
    if candidate.retry_after_s is not None:
        return Checked(candidate, matched=False)
    return Checked(candidate, users.password_checks_out(candidate.password_hash, password))


def settle(session: Session, checked: Checked, *, limits: Limits) -> SignIn:
    """In the write transaction: count again, turn by turn, then count a failure or sign in."""
    candidate = checked.candidate
    if candidate.retry_after_s is not None:
        return SignIn(None, retry_after_s=candidate.retry_after_s)
    _serialise(session, candidate.keys)  # the sign-ins to this account or address take turns
    now = utcnow()
    wait = retry_after(session, keys=candidate.keys, limits=limits, now=now)
    if wait is not None:  # guesses checked side by side beyond the limit: refused, uncounted
        return SignIn(None, retry_after_s=wait)
    user = session.get(User, candidate.user_id) if checked.matched else None
    # The hash checked must still be the account's: a password changed meanwhile wins.
    if user is None or not user.is_active or user.password_hash != candidate.password_hash:
        record_failure(session, keys=candidate.keys, limits=limits, now=now)
        return SignIn(None)
    # Only the account's count: clearing the address's would let someone who has an
    # account reset their guessing budget by signing in to it between guesses.
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == candidate.keys.account))
    return SignIn(user)


def retry_after(session: Session, *, keys: Keys, limits: Limits, now: datetime) -> int | None:
    """Seconds until this account and address may try again, or None if they may now."""
    stmt = (
        select(LoginAttempt.key, LoginAttempt.attempted_at)
        .where(
            LoginAttempt.key.in_([keys.account, keys.address]),
            LoginAttempt.attempted_at > now - limits.window,
        )
        .order_by(LoginAttempt.attempted_at.desc())
    )
    newest_first: dict[str, list[datetime]] = defaultdict(list)
    for key, attempted_at in session.execute(stmt):
        newest_first[key].append(attempted_at)
    waits = [
        _wait(newest_first[keys.account], limits.per_account, limits.window, now),
        _wait(newest_first[keys.address], limits.per_address, limits.window, now),
    ]
    found = [wait for wait in waits if wait is not None]
    return max(found) if found else None


def _wait(newest_first: list[datetime], limit: int, window: timedelta, now: datetime) -> int | None:
    """A sliding window: one more try is allowed once the limit-th newest failure ages out."""
    if len(newest_first) < limit:
        return None
    frees_at = newest_first[limit - 1] + window
    return max(1, math.ceil((frees_at - now).total_seconds()))


def record_failure(session: Session, *, keys: Keys, limits: Limits, now: datetime) -> None:
    """Count a failure against both keys, and drop failures too old to count for anyone."""
    rows = [{"key": key, "attempted_at": now} for key in (keys.account, keys.address)]
    session.execute(insert(LoginAttempt), rows)
    session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= now - limits.window))


def _serialise(session: Session, keys: Keys) -> None:
    """Sign-ins to one account or from one address take turns until their transaction ends.

    Without this, guesses sent in parallel would all read the count before any of them
    recorded its failure, and each would get its password checked. SQLite needs nothing:
    the sign-in's write transaction (BEGIN IMMEDIATE) already runs alone.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    # Always in the same order, so two sign-ins can never wait on each other's second lock.
    ids = sorted(int(key[:15], 16) for key in (keys.account, keys.address))
    session.execute(
        text("SELECT pg_advisory_xact_lock(:first), pg_advisory_xact_lock(:second)"),
        {"first": ids[0], "second": ids[1]},
    )
