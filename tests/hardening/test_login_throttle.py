"""Sign-in throttling: password guessing is refused after a few failures, per account and per
client address, across every process on the database, and only for a while.

Time is moved by rewriting the stored attempt times, never by sleeping.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.models import LoginAttempt, User
from app.services import login_throttle, users
from tests.conftest import Actor, make_settings
from tests.perf.test_statement_counts import counted_statements
from tests.web.conftest import LiveServer

PASSWORD = "correct horse battery"
LIMIT = 5
WINDOW_S = 900
REFUSAL = "Too many failed sign-ins"


def token_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def attempt(client: TestClient | httpx.Client, email: str, password: str) -> Any:
    token = token_in(client.get("/login").text)
    form = {"email": email, "password": password, "csrf_token": token}
    return client.post("/login", data=form, follow_redirects=False)


def fail(client: TestClient | httpx.Client, email: str, times: int) -> None:
    for _ in range(times):
        assert attempt(client, email, "wrong guess").status_code == 401


def age_attempts(db: Database, seconds: float) -> None:
    """As if ``seconds`` had passed since every recorded failure."""
    with db.transaction() as session:
        for row in session.scalars(select(LoginAttempt)):
            row.attempted_at -= timedelta(seconds=seconds)


def stored_attempts(db: Database) -> int:
    with db.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(LoginAttempt)) or 0


def signed_in(client: TestClient) -> bool:
    return client.get("/", follow_redirects=False).status_code == 200


def test_the_right_password_after_too_many_guesses_is_refused_unchecked(
    client: TestClient, db: Database, member: Actor
) -> None:
    fail(client, member.email, LIMIT)
    token = token_in(client.get("/login").text)
    form = {"email": member.email, "password": PASSWORD, "csrf_token": token}
    with counted_statements(db) as statements:
        refused = client.post("/login", data=form, follow_redirects=False)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= WINDOW_S
    assert REFUSAL in refused.text
    assert 'role="alert"' in refused.text
    # The users table was never read: the password was not checked, no Argon2 time spent.
    assert not [s for s in statements if "FROM users" in s], statements
    assert len(statements) <= 4, statements
    assert not signed_in(client)


def test_an_unknown_email_is_throttled_with_the_same_answer(
    client: TestClient, member: Actor
) -> None:
    answers = []
    for email in (member.email, "nobody@example.test"):
        fail(client, email, LIMIT)
        answers.append(attempt(client, email, "another guess"))
    known, unknown = answers
    assert known.status_code == unknown.status_code == 429
    assert _alert(known.text) == _alert(unknown.text)
    assert abs(int(known.headers["retry-after"]) - int(unknown.headers["retry-after"])) <= 5


def _alert(html: str) -> str:
    match = re.search(r'<p class="flash error" role="alert" id="login-error">(.*?)</p>', html)
    assert match
    return match.group(1)


def test_the_email_is_counted_as_the_account_whatever_its_case(
    client: TestClient, member: Actor
) -> None:
    for index in range(LIMIT):
        variant = member.email.upper() if index % 2 else f"  {member.email}"
        assert attempt(client, variant, "wrong guess").status_code == 401
    assert attempt(client, member.email, PASSWORD).status_code == 429


def test_a_successful_sign_in_clears_the_accounts_count(client: TestClient, member: Actor) -> None:
    fail(client, member.email, LIMIT - 1)
    assert attempt(client, member.email, PASSWORD).status_code == 303
    client.cookies.clear()
    fail(client, member.email, LIMIT)
    assert attempt(client, member.email, PASSWORD).status_code == 429


def test_sign_in_works_again_once_the_failures_leave_the_window(
    client: TestClient, db: Database, member: Actor
) -> None:
    fail(client, member.email, LIMIT)
    age_attempts(db, WINDOW_S - 300)
    waiting = attempt(client, member.email, PASSWORD)
    assert waiting.status_code == 429
    assert 0 < int(waiting.headers["retry-after"]) <= 300
    age_attempts(db, 300)
    assert attempt(client, member.email, PASSWORD).status_code == 303
    assert signed_in(client)


def test_the_window_slides(client: TestClient, db: Database, member: Actor) -> None:
    """Failures leave one by one: the oldest leaving lets exactly one more try in."""
    fail(client, member.email, 1)
    age_attempts(db, WINDOW_S / 2)
    fail(client, member.email, LIMIT - 1)
    assert attempt(client, member.email, "wrong guess").status_code == 429
    age_attempts(db, WINDOW_S / 2)
    assert attempt(client, member.email, "wrong guess").status_code == 401
    assert attempt(client, member.email, PASSWORD).status_code == 429


def test_refused_tries_are_not_counted_so_waiting_always_works(
    client: TestClient, db: Database, member: Actor
) -> None:
    fail(client, member.email, LIMIT)
    for _ in range(20):
        assert attempt(client, member.email, "wrong guess").status_code == 429
    # Nothing was stored for the refused tries: one row per failure and key, and no more.
    assert stored_attempts(db) == 2 * LIMIT
    age_attempts(db, WINDOW_S)
    assert attempt(client, member.email, PASSWORD).status_code == 303


def test_old_failures_are_pruned_when_a_new_one_is_written(
    client: TestClient, db: Database, member: Actor
) -> None:
    fail(client, "someone@example.test", 3)
    age_attempts(db, WINDOW_S + 1)
    assert stored_attempts(db) == 6
    fail(client, member.email, 1)
    assert stored_attempts(db) == 2


def test_the_email_typed_is_not_stored(client: TestClient, db: Database) -> None:
    fail(client, "my-password-typed-in-the-wrong-box", 1)
    with db.transaction(write=False) as session:
        keys = list(session.scalars(select(LoginAttempt.key)))
    assert len(keys) == 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


@pytest.fixture
def strict_address_app(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url, login_max_failures_per_address=3))


def test_guessing_across_accounts_from_one_address_is_throttled(
    strict_address_app: FastAPI, member: Actor
) -> None:
    with TestClient(strict_address_app, client=("203.0.113.7", 4000)) as attacker:
        for number in range(3):
            assert attempt(attacker, f"user{number}@example.test", "guess").status_code == 401
        assert attempt(attacker, member.email, PASSWORD).status_code == 429
    # The account itself is not throttled: its owner signs in from their own address.
    with TestClient(strict_address_app, client=("198.51.100.9", 4000)) as owner:
        assert attempt(owner, member.email, PASSWORD).status_code == 303


def test_an_account_throttled_by_one_address_is_throttled_from_every_address(
    app: FastAPI, member: Actor
) -> None:
    with TestClient(app, client=("203.0.113.7", 4000)) as attacker:
        fail(attacker, member.email, LIMIT)
    with TestClient(app, client=("198.51.100.9", 4000)) as other:
        assert attempt(other, member.email, PASSWORD).status_code == 429


def test_two_app_processes_on_one_database_share_the_count(
    settings: Settings, member: Actor
) -> None:
    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as one, TestClient(second) as two:
        fail(one, member.email, 3)
        fail(two, member.email, LIMIT - 3)
        assert attempt(one, member.email, PASSWORD).status_code == 429
        assert attempt(two, member.email, PASSWORD).status_code == 429


@pytest.fixture
def two_servers(settings: Settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    servers = (LiveServer(create_app(settings)).start(), LiveServer(create_app(settings)).start())
    yield servers
    for server in servers:
        server.stop()


def test_parallel_guesses_on_two_servers_get_exactly_the_limit(
    two_servers: tuple[LiveServer, LiveServer], member: Actor
) -> None:
    """Guesses sent at once must not all read the count before any of them is recorded."""
    clients = [httpx.Client(base_url=server.url, timeout=30) for server in two_servers]
    tokens = [token_in(client.get("/login").text) for client in clients]

    def guess(index: int) -> int:
        client, token = clients[index % 2], tokens[index % 2]
        form = {"email": member.email, "password": "wrong guess", "csrf_token": token}
        return client.post("/login", data=form).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(pool.map(guess, range(24)))
    for client in clients:
        client.close()
    assert statuses == {401: LIMIT, 429: 24 - LIMIT}


def test_the_limits_are_settings(database_url: str, member: Actor) -> None:
    app = create_app(make_settings(database_url, login_max_failures=2, login_window_s=60))
    with TestClient(app) as client:
        fail(client, member.email, 2)
        refused = attempt(client, member.email, PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 60


def test_the_refusal_does_not_outlive_its_window_even_when_hammered(
    client: TestClient, db: Database, member: Actor
) -> None:
    """No permanent lock: at most LIMIT failures per window can ever be held against an account."""
    for _ in range(3):
        fail(client, member.email, LIMIT)
        assert attempt(client, member.email, "wrong guess").status_code == 429
        age_attempts(db, WINDOW_S)
    assert attempt(client, member.email, PASSWORD).status_code == 303


class WatchedPasswordChecks:
    """Argon2 as the app runs it, noting how many of the app's connections are out meanwhile,
    and how many checks run at once."""

    def __init__(self, hasher: PasswordHasher, engine: Engine) -> None:
        self.hasher = hasher
        self.engine = engine
        self.seen: list[int] = []
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        with self.lock:
            self.seen.append(self.engine.pool.checkedout())  # type: ignore[attr-defined]
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return self.hasher.verify(password_hash, password)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)


def test_the_password_is_checked_while_the_sign_in_holds_no_connection(
    client: TestClient, db: Database, member: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2id takes a tenth of a second: inside the write transaction it held SQLite's write
    lock, and the server's one write slot, that long."""
    token = token_in(client.get("/login").text)
    idle = db.engine.pool.checkedout()  # type: ignore[attr-defined]
    spy = WatchedPasswordChecks(users._hasher, db.engine)
    monkeypatch.setattr(users, "_hasher", spy)
    statuses = []
    for password in ("wrong guess", PASSWORD):
        form = {"email": member.email, "password": password, "csrf_token": token}
        statuses.append(client.post("/login", data=form, follow_redirects=False).status_code)
    assert statuses == [401, 303]
    assert spy.seen == [idle, idle]


def test_a_password_changed_after_its_check_does_not_sign_in(db: Database, member: Actor) -> None:
    limits = login_throttle.Limits(per_account=LIMIT, per_address=20, window=timedelta(hours=1))
    with db.reads() as session:
        found = login_throttle.look_up(
            session, email=member.email, address="192.0.2.1", limits=limits
        )
    checked = login_throttle.check(found, PASSWORD)
    assert checked.matched
    with db.transaction() as session:
        user = session.get(User, found.user_id)
        assert user is not None
        user.password_hash = users.hash_password("a new password, set meanwhile")
    with db.transaction() as session:
        outcome = login_throttle.settle(session, checked, limits=limits)
    assert outcome == login_throttle.SignIn(None)
    assert stored_attempts(db) == 2  # counted as a failure, against the account and the address


def test_a_burst_of_sign_ins_checks_two_passwords_at_a_time(
    settings: Settings, member: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2id takes 64 MiB per check: out of the write transaction, twelve sign-ins at once
    would otherwise be checked side by side on twelve worker threads."""
    server = LiveServer(create_app(settings)).start()
    spy = WatchedPasswordChecks(users._hasher, server.db.engine)
    monkeypatch.setattr(users, "_hasher", spy)
    guessers = [httpx.Client(base_url=server.url, timeout=30) for _ in range(12)]
    try:
        tokens = [token_in(guesser.get("/login").text) for guesser in guessers]

        def sign_in(index: int) -> int:
            form = {
                "email": f"user{index}@example.test",
                "password": "x",
                "csrf_token": tokens[index],
            }
            return guessers[index].post("/login", data=form).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(sign_in, range(12)))
    finally:
        for guesser in guessers:
            guesser.close()
        server.stop()
    assert statuses == [401] * 12
    assert len(spy.seen) == 12
    assert spy.most_at_once == 2
