"""Behind a reverse proxy: its X-Forwarded-For and X-Forwarded-Proto are believed only from the
addresses in DESIGNGATE_FORWARDED_ALLOW_IPS, so sign-in throttling counts each client's own
address and cookies sent over the proxy's HTTPS are Secure; from anyone else they are ignored,
so a guesser cannot dodge the per-address limit by inventing addresses."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.web.sessions import COOKIE_NAME
from tests.conftest import Actor, make_settings
from tests.hardening.test_login_throttle import PASSWORD, token_in

PROXY = ("10.0.0.5", 4000)
ELSEWHERE = ("192.0.2.44", 4000)
ATTACKER = "203.0.113.7"
OWNER = "198.51.100.9"
PER_ADDRESS = 3


def strict_app(database_url: str, **overrides: str) -> FastAPI:
    return create_app(
        make_settings(database_url, login_max_failures_per_address=PER_ADDRESS, **overrides)
    )


def sign_in(client: TestClient, email: str, password: str, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    token = token_in(client.get("/login", headers=headers).text)
    form = {"email": email, "password": password, "csrf_token": token}
    response = client.post("/login", data=form, headers=headers, follow_redirects=False)
    return response.status_code


def guess_across_accounts(client: TestClient, forwarded_for: list[str]) -> list[int]:
    return [
        sign_in(client, f"user{number}@example.test", "guess", address)
        for number, address in enumerate(forwarded_for)
    ]


def test_a_trusted_proxy_gets_each_client_counted_at_its_own_address(
    database_url: str, member: Actor
) -> None:
    app = strict_app(database_url, forwarded_allow_ips="10.0.0.5")
    with TestClient(app, client=PROXY) as proxy:
        assert guess_across_accounts(proxy, [ATTACKER] * PER_ADDRESS) == [401] * PER_ADDRESS
        assert sign_in(proxy, member.email, PASSWORD, ATTACKER) == 429
        # Another client behind the same proxy is not paused by the attacker's guesses.
        assert sign_in(proxy, member.email, PASSWORD, OWNER) == 303


def test_forwarded_addresses_are_ignored_unless_a_proxy_is_configured(
    database_url: str, member: Actor
) -> None:
    invented = [f"203.0.113.{number}" for number in range(10, 10 + PER_ADDRESS)]
    with TestClient(strict_app(database_url), client=PROXY) as client:
        assert guess_across_accounts(client, invented) == [401] * PER_ADDRESS
        assert sign_in(client, member.email, PASSWORD, OWNER) == 429


def test_forwarded_addresses_are_ignored_from_an_address_not_listed(
    database_url: str, member: Actor
) -> None:
    app = strict_app(database_url, forwarded_allow_ips="10.0.0.5")
    invented = [f"203.0.113.{number}" for number in range(10, 10 + PER_ADDRESS)]
    with TestClient(app, client=ELSEWHERE) as client:
        assert guess_across_accounts(client, invented) == [401] * PER_ADDRESS
        assert sign_in(client, member.email, PASSWORD, OWNER) == 429


def session_cookie(database_url: str, forwarded_allow_ips: str | None) -> str:
    """The cookie the sign-in page sets (it carries the form's CSRF secret)."""
    app = create_app(make_settings(database_url, forwarded_allow_ips=forwarded_allow_ips))
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": OWNER}
    with TestClient(app, client=PROXY) as proxy:
        response = proxy.get("/login", headers=headers)
    assert response.status_code == 200
    cookies = [value for value in response.headers.get_list("set-cookie") if COOKIE_NAME in value]
    assert len(cookies) == 1
    return cookies[0]


def test_a_session_cookie_over_the_proxys_https_is_secure(database_url: str) -> None:
    assert "; Secure" in session_cookie(database_url, "10.0.0.5")
    # Without a trusted proxy the request came over plain HTTP, whatever a header claims.
    assert "; Secure" not in session_cookie(database_url, None)


def test_a_blank_setting_trusts_no_proxy() -> None:
    assert Settings(forwarded_allow_ips="  ").forwarded_allow_ips is None
