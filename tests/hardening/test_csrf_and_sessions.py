"""Cookie-authenticated writes: every form and htmx write route refuses a request without
the session's CSRF token, with a wrong one, or sent from another site, and writes nothing;
the page's own token gets past the check. Sessions: new at sign-in, over at sign-out (that
browser's, or with "Sign out everywhere" every one of the user's).

The routes are read from the app itself, so a write route added later is checked at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database, utcnow
from app.models import EndedWebSession
from app.models.enums import Role
from app.web.deps import check_csrf
from app.web.sessions import MAX_AGE_S
from tests import factories
from tests.conftest import Actor, make_actor
from tests.hardening.routes import dependency_calls, write_routes
from tests.hardening.web_helpers import COOKIE, PASSWORD, sign_in, snapshot, token_in

REFUSAL = "security token"
# Enough of a form for each route to get past parsing, so "not 403" means the check passed.
FORMS: dict[str, dict[str, str]] = {
    "/projects": {"name": "CSRF", "problem": "Who sent this?"},
    "/items/{item_id}/decision": {"status": "decided", "summary": "s", "rationale": "r"},
    "/threads/{thread_id}/messages": {"content": "Why?"},
    "/projects/{project_id}/threads": {"mode": "open"},
    "/admin/users": {"email": "new@example.test", "name": "N", "role": "member"},
    "/admin/tokens": {"label": "csrf"},
}


@dataclass(frozen=True)
class WebWrite:
    method: str
    path: str
    dependant: Dependant

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, ids: dict[str, int]) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), self.path)

    @property
    def form(self) -> dict[str, str]:
        return dict(FORMS.get(self.path, {}))


def web_writes() -> list[WebWrite]:
    """Every write route outside the bearer-token API, as the app routes them."""
    return [WebWrite(*route) for route in write_routes(lambda path: not path.startswith("/api/"))]


WEB_WRITES = web_writes()


def test_the_list_holds_the_write_routes_there_are() -> None:
    found = {str(route) for route in WEB_WRITES}
    assert len(found) >= 18
    for expected in ("POST /login", "POST /logout", "POST /projects", "POST /admin/users"):
        assert expected in found


@pytest.mark.parametrize("route", WEB_WRITES, ids=str)
def test_every_web_write_route_checks_the_csrf_token(route: WebWrite) -> None:
    assert check_csrf in set(dependency_calls(route.dependant)), f"{route} skips the CSRF check"


@pytest.fixture
def signed_in(client: TestClient, admin: Actor) -> str:
    """An admin signed in through the form (so no route refuses them for their role)."""
    return sign_in(client, admin.email)


@pytest.fixture
def world(client: TestClient, db: Database, admin: Actor) -> dict[str, int]:
    """Real ids for every kind of id a web write route takes."""
    project = factories.create_project(client, admin)
    items = factories.checklist(client, admin, project["id"])
    thread = client.post(
        f"/api/v1/projects/{project['id']}/threads", json={"mode": "open"}, headers=admin.headers
    )
    meeting = client.post(f"/api/v1/projects/{project['id']}/meetings", headers=admin.headers)
    other = make_actor(db, Role.MEMBER)
    tokens = client.get("/api/v1/tokens", headers=admin.headers).json()
    return {
        "project_id": project["id"],
        "item_id": items[0]["id"],
        "thread_id": thread.json()["id"],
        "meeting_id": meeting.json()["id"],
        "user_id": other.user_id,
        "token_id": tokens[0]["id"],
    }


def _refused(response: Any) -> bool:
    return response.status_code == 403 and REFUSAL in response.text


@pytest.mark.parametrize("route", WEB_WRITES, ids=str)
def test_writes_without_the_right_token_are_refused_and_write_nothing(
    client: TestClient,
    db: Database,
    database_url: str,
    world: dict[str, int],
    signed_in: str,
    route: WebWrite,
) -> None:
    url = route.url(world)
    other_token = sign_in(TestClient(client.app), make_actor(db, Role.MEMBER).email)
    before = snapshot(database_url)
    attempts = [
        ("no token", route.form, {}),
        ("wrong header", route.form, {"X-CSRF-Token": "forged"}),
        ("empty header", route.form, {"X-CSRF-Token": ""}),
        ("wrong field", {**route.form, "csrf_token": "forged"}, {}),
        ("another session's token", route.form, {"X-CSRF-Token": other_token}),
        ("htmx, no token", route.form, {"HX-Request": "true"}),
    ]
    for label, form, headers in attempts:
        response = client.request(
            route.method, url, data=form, headers=headers, follow_redirects=False
        )
        assert _refused(response), f"{route}, {label}: {response.status_code}"
    assert snapshot(database_url) == before, f"{route} wrote something while refusing"
    # The page's own token gets past the check (the route may still say no for other reasons).
    passed = client.request(
        route.method, url, data={**route.form, "csrf_token": signed_in}, follow_redirects=False
    )
    assert not _refused(passed), f"{route} refused its own page's token"


def test_a_write_sent_from_another_site_is_refused_even_with_the_token(
    client: TestClient, database_url: str, signed_in: str
) -> None:
    form = {"name": "From elsewhere", "problem": "Sent by another site", "csrf_token": signed_in}
    before = snapshot(database_url)
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.test"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        response = client.post("/projects", data=form, headers=headers, follow_redirects=False)
        assert _refused(response), headers
    assert snapshot(database_url) == before
    same = client.post(
        "/projects", data=form, headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False
    )
    assert same.status_code == 303


def test_the_session_cookie_is_http_only_and_same_site(client: TestClient, member: Actor) -> None:
    token = token_in(client.get("/login").text)
    form = {"email": member.email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login", data=form, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()


def test_a_secure_cookie_over_https(app: Any, member: Actor) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        token = token_in(client.get("/login").text)
        form = {"email": member.email, "password": PASSWORD, "csrf_token": token}
        response = client.post("/login", data=form, follow_redirects=False)
    assert "; Secure" in response.headers["set-cookie"]


def test_sign_in_starts_a_new_session_and_the_old_cookie_does_not_carry_over(
    client: TestClient, member: Actor
) -> None:
    pre_login_token = token_in(client.get("/login").text)
    pre_login_cookie = client.cookies.get(COOKIE)
    assert pre_login_cookie
    form = {"email": member.email, "password": PASSWORD, "csrf_token": pre_login_token}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    session_token = token_in(client.get("/").text)
    assert client.cookies.get(COOKIE) != pre_login_cookie
    assert session_token != pre_login_token
    # The pre-login token is no good in the new session...
    refused = client.post("/projects", data={"name": "x", "problem": "y", "csrf_token": "x"})
    assert refused.status_code == 403
    stale = client.post(
        "/projects",
        data={"name": "x", "problem": "y", "csrf_token": pre_login_token},
        follow_redirects=False,
    )
    assert stale.status_code == 403
    # ...and the pre-login cookie is still anonymous: it was not turned into a signed-in one.
    anonymous = TestClient(client.app, cookies={COOKIE: pre_login_cookie})
    assert anonymous.get("/", follow_redirects=False).headers["location"].startswith("/login")


def _signed_in_with_a_copy_of_the_cookie(client: TestClient, email: str) -> tuple[str, str]:
    """Sign ``client`` in; its session's CSRF token, and a copy of its session cookie."""
    token = sign_in(client, email)
    copied = client.cookies.get(COOKIE)
    assert copied
    return token, copied


def test_sign_out_ends_the_session_even_for_a_copy_of_its_cookie(
    client: TestClient, database_url: str, member: Actor
) -> None:
    token, copied = _signed_in_with_a_copy_of_the_cookie(client, member.email)
    assert (
        client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code
        == 303
    )
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    replayed = TestClient(client.app, cookies={COOKIE: copied})
    assert replayed.get("/", follow_redirects=False).status_code == 303
    before = snapshot(database_url)
    form = {"name": "x", "problem": "y", "csrf_token": token}
    forged_write = replayed.post("/projects", data=form, follow_redirects=False)
    assert forged_write.status_code == 303
    assert forged_write.headers["location"].startswith("/login")
    assert snapshot(database_url) == before
    # Signing in again works, with a session of its own.
    assert sign_in(client, member.email) != token


def test_sign_out_needs_the_token(client: TestClient, member: Actor) -> None:
    """Otherwise any site could sign people out (a nuisance, and a step in login CSRF)."""
    sign_in(client, member.email)
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200


def _signed_in_elsewhere(app: Any, email: str) -> TestClient:
    other = TestClient(app)
    sign_in(other, email)
    return other


def _goes_to_sign_in(client: TestClient) -> bool:
    response = client.get("/", follow_redirects=False)
    return response.status_code == 303 and response.headers["location"].startswith("/login")


def test_sign_out_ends_this_browsers_session_and_not_the_users_others(
    app: Any, client: TestClient, member: Actor
) -> None:
    token, copied = _signed_in_with_a_copy_of_the_cookie(client, member.email)
    other_browser = _signed_in_elsewhere(app, member.email)

    signed_out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)

    assert signed_out.status_code == 303
    assert _goes_to_sign_in(client)
    replayed = TestClient(app, cookies={COOKIE: copied})
    assert _goes_to_sign_in(replayed)
    assert other_browser.get("/", follow_redirects=False).status_code == 200
    # The copy signing out again is no error, and ends nothing more.
    again = replayed.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert again.status_code == 303
    assert other_browser.get("/", follow_redirects=False).status_code == 200


def test_sign_out_everywhere_ends_every_session_of_the_user_and_no_one_elses(
    app: Any, client: TestClient, member: Actor, admin: Actor
) -> None:
    token, copied = _signed_in_with_a_copy_of_the_cookie(client, member.email)
    other_browser = _signed_in_elsewhere(app, member.email)
    someone_else = _signed_in_elsewhere(app, admin.email)

    form = {"csrf_token": token}
    signed_out = client.post("/logout/everywhere", data=form, follow_redirects=False)

    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login"
    assert _goes_to_sign_in(client)
    assert _goes_to_sign_in(other_browser)
    assert _goes_to_sign_in(TestClient(app, cookies={COOKIE: copied}))
    assert someone_else.get("/", follow_redirects=False).status_code == 200
    assert sign_in(client, member.email) != token


@pytest.mark.parametrize("same_user", [True, False], ids=["same user", "another user"])
def test_signing_in_over_a_signed_in_session_ends_it(
    app: Any, client: TestClient, member: Actor, admin: Actor, same_user: bool
) -> None:
    """A shared screen signed in as one user and then as another (or again as the same)
    leaves no cookie copy signed in as the first; the first user's other browsers go on."""
    token, copied = _signed_in_with_a_copy_of_the_cookie(client, member.email)
    other_browser = _signed_in_elsewhere(app, member.email)

    next_user = member if same_user else admin
    new_token = sign_in(client, next_user.email)

    assert new_token != token
    assert f"({next_user.role})</span>" in client.get("/").text
    assert _goes_to_sign_in(TestClient(app, cookies={COOKIE: copied}))
    assert other_browser.get("/", follow_redirects=False).status_code == 200


def test_a_sign_out_clears_the_ids_of_sessions_whose_cookies_have_expired(
    client: TestClient, db: Database, member: Actor
) -> None:
    lifetime = timedelta(seconds=MAX_AGE_S)
    now = utcnow()
    with db.transaction() as session:
        session.add(EndedWebSession(session_id="expired", ended_at=now - lifetime * 1.1))
        session.add(EndedWebSession(session_id="still-kept", ended_at=now - lifetime * 0.9))

    client.post("/logout", data={"csrf_token": sign_in(client, member.email)})

    with db.transaction(write=False) as session:
        kept = set(session.scalars(select(EndedWebSession.session_id)))
    assert "expired" not in kept
    assert "still-kept" in kept
    assert len(kept) == 2  # and the session just signed out
