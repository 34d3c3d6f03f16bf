"""Error pages a signed-in user meets: the normal navigation, and words about what they asked
for rather than the names of the app's parameters."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.web.errors import PATH_NOUNS
from tests.api.test_health import answer_once_the_database_is_gone
from tests.conftest import Actor, is_postgres
from tests.hardening.web_helpers import page_routes, sign_in, token_in

SIGNED_IN_NAV = "Sign out"


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/projects/abc", 422, "No such project"),
        ("/items/abc", 422, "No such checklist item"),
        ("/threads/0", 422, "No such debate thread"),
        ("/no/such/page", 404, "There is no page at this address."),
    ],
)
def test_an_error_page_keeps_the_signed_in_navigation_and_speaks_plainly(
    client: TestClient, member: Actor, path: str, status: int, words: str
) -> None:
    sign_in(client, member.email)
    response = client.get(path)

    assert response.status_code == status
    assert words in response.text
    assert SIGNED_IN_NAV in response.text
    assert 'href="/admin/users"' not in response.text  # a member's navigation, not an admin's
    assert "_id" not in response.text


def test_an_admins_error_page_has_the_admins_navigation(client: TestClient, admin: Actor) -> None:
    sign_in(client, admin.email)
    response = client.get("/projects/abc")

    assert 'href="/admin/users"' in response.text
    assert "This address is not valid" in response.text


def test_an_error_page_for_someone_signed_out_has_no_signed_in_navigation(
    client: TestClient, member: Actor
) -> None:
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert SIGNED_IN_NAV not in response.text


def test_a_form_with_a_malformed_hidden_field_names_no_parameter(
    client: TestClient, admin: Actor
) -> None:
    token = sign_in(client, admin.email)
    response = client.post("/admin/tokens", data={"user_id": "abc", "csrf_token": token})

    assert response.status_code == 422
    assert "user_id" not in response.text
    assert "reload the page" in response.text
    assert SIGNED_IN_NAV in response.text


def test_every_id_in_a_page_address_has_a_name_for_people(client: TestClient) -> None:
    """A new page whose address names a new kind of thing needs its words here too."""
    named = {
        name
        for route in page_routes(client.app, "GET") | page_routes(client.app, "POST")  # type: ignore[arg-type]
        for name in re.findall(r"{([a-z_]+_id)}", route)
    }
    assert named
    assert named <= set(PATH_NOUNS), named - set(PATH_NOUNS)


def _with_ids(route: str, value: str) -> str:
    return re.sub(r"{([a-z_]+_id)}", value, route).replace("{name}", "design-pack.md")


def _page_routes_with_ids(client: TestClient, method: str) -> list[str]:
    routes = sorted(route for route in page_routes(client.app, method) if "_id}" in route)  # type: ignore[arg-type]
    assert routes
    return routes


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx"])
def test_a_malformed_id_sends_someone_signed_out_to_sign_in_as_a_real_one_does(
    client: TestClient, member: Actor, headers: dict[str, str]
) -> None:
    """Who is asking is settled first: a page does not tell a visitor which addresses it
    has before they have signed in."""
    for route in _page_routes_with_ids(client, "GET"):
        well_formed = client.get(_with_ids(route, "1"), headers=headers, follow_redirects=False)
        for value in ("abc", "0"):
            url = _with_ids(route, value)
            response = client.get(url, headers=headers, follow_redirects=False)
            assert response.status_code == well_formed.status_code, url
            if not headers:
                assert response.headers["location"] == "/login?next=" + url, url


def test_a_malformed_id_after_the_session_ended_elsewhere_goes_to_sign_in(
    client: TestClient, app: FastAPI, member: Actor
) -> None:
    sign_in(client, member.email)
    elsewhere = TestClient(app)
    elsewhere.post("/logout/everywhere", data={"csrf_token": sign_in(elsewhere, member.email)})

    response = client.get("/projects/abc", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/projects/abc"


def test_a_form_sent_signed_out_with_a_malformed_id_is_answered_as_with_a_real_one(
    client: TestClient, member: Actor
) -> None:
    """Without the session's form token a write is refused (403) before anything else; with
    the token of a signed-out session it is sent to sign in, malformed id or not."""
    anonymous_token = token_in(client.get("/login").text)
    for route in _page_routes_with_ids(client, "POST"):
        for form in ({}, {"csrf_token": anonymous_token}):
            well_formed = client.post(_with_ids(route, "1"), data=form, follow_redirects=False)
            assert well_formed.status_code in (303, 403), route
            response = client.post(_with_ids(route, "abc"), data=form, follow_redirects=False)
            assert response.status_code == well_formed.status_code, route
            assert response.headers.get("location") == well_formed.headers.get("location")


@pytest.mark.skipif(not is_postgres(), reason="needs a database server that can go away")
def test_a_page_while_the_database_is_unreachable_says_so_and_when_to_try_again(
    scratch_database_url: str,
) -> None:
    response = answer_once_the_database_is_gone(scratch_database_url, "/login")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "The database cannot answer right now" in response.text
    assert response.headers["retry-after"] == "2"
