"""The project list, 50 projects a page, with plain links between its pages (no browser)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.db import Database
from tests.api.test_paging import add_projects
from tests.conftest import Actor
from tests.web.test_pages import HTMX, sign_in

PROJECT_LINK = re.compile(r'<a href="/projects/(\d+)">')


def _listed(html: str) -> list[int]:
    return [int(found) for found in PROJECT_LINK.findall(html)]


def test_the_project_list_shows_fifty_and_links_to_the_next_page_and_back(
    client: TestClient, db: Database, member: Actor
) -> None:
    ids = add_projects(db, 51)
    sign_in(client, member.email)
    first = client.get("/").text
    assert _listed(first) == ids[:50]
    assert f'<a href="/?after={ids[49]}" id="next-page" rel="next">Next page</a>' in first
    assert "First page" not in first
    second = client.get(f"/?after={ids[49]}").text
    assert _listed(second) == ids[50:]
    assert '<a href="/" id="first-page">First page</a>' in second
    assert "Next page" not in second


def test_an_htmx_request_for_a_page_gets_the_list_with_its_links(
    client: TestClient, db: Database, member: Actor
) -> None:
    ids = add_projects(db, 51)
    sign_in(client, member.email)
    fragment = client.get(f"/?after={ids[0]}", headers=HTMX).text
    assert fragment.startswith('<section id="project-list"')
    assert _listed(fragment) == ids[1:51]
    assert "First page" in fragment
    assert "Next page" not in fragment


def test_a_page_past_the_last_project_says_so_and_leads_back(
    client: TestClient, db: Database, member: Actor
) -> None:
    ids = add_projects(db, 1)
    sign_in(client, member.email)
    past = client.get(f"/?after={ids[0]}").text
    assert "No more projects." in past
    assert "No projects yet" not in past
    assert '<a href="/" id="first-page">First page</a>' in past


def test_a_page_address_with_an_impossible_start_is_invalid(
    client: TestClient, member: Actor
) -> None:
    sign_in(client, member.email)
    for query in ("after=-1", "after=abc", f"after={2**31}"):
        answer = client.get(f"/?{query}")
        assert answer.status_code == 422, query
        # Said of the address, not as a form that "sent" something (no form did).
        assert "This address is not valid" in answer.text, query
        assert "not one these pages make" in answer.text, query


def test_a_signed_out_visitor_at_a_malformed_page_address_is_sent_to_sign_in(
    client: TestClient, member: Actor
) -> None:
    # Sign-in comes first: the page's user dependency is resolved before its query.
    answer = client.get("/?after=abc", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
