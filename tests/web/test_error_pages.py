"""Error pages a signed-in user meets: the normal navigation, and words about what they asked
for rather than the names of the app's parameters."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.web.errors import PATH_NOUNS
from tests.conftest import Actor
from tests.hardening.web_helpers import page_routes, sign_in

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
