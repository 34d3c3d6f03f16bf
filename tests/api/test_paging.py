"""Lists that grow without bound are read a page at a time: the project list and a
project's audit trail, each led from page to page by a `Link: <...>; rel="next"` header."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from app.db import Database
from app.models import AuditEvent, Project
from tests.conftest import Actor

NEXT_LINK = re.compile(r'^<(http://testserver/[^>]+)>; rel="next"$')


def add_projects(db: Database, count: int) -> list[int]:
    """``count`` projects written straight to the database (the list needs no checklist)."""
    with db.transaction() as session:
        added = [Project(name=f"P{number}", problem="p") for number in range(count)]
        session.add_all(added)
        session.flush()
        return [project.id for project in added]


def _add_events(db: Database, project_id: int, count: int) -> list[int]:
    with db.transaction() as session:
        added = [
            AuditEvent(action="test.event", entity_type="project", project_id=project_id)
            for _ in range(count)
        ]
        session.add_all(added)
        session.flush()
        return [event.id for event in added]


def _next_url(response: Response) -> str | None:
    """The next page's absolute URL from the Link header, None when there is none."""
    link = response.headers.get("link")
    if link is None:
        return None
    match = NEXT_LINK.match(link)
    assert match, link
    return match.group(1)


def _read_all_pages(client: TestClient, actor: Actor, url: str) -> list[list[dict[str, Any]]]:
    pages = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url, headers=actor.headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_url = _next_url(response)
        assert len(pages) < 20, "the links never end"
    return pages


def test_projects_are_read_page_by_page_through_the_next_links_to_the_end(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    ids = add_projects(db, 5)
    pages = _read_all_pages(client, viewer, "/api/v1/projects?limit=2")
    assert [[p["id"] for p in page] for page in pages] == [ids[0:2], ids[2:4], ids[4:5]]


def test_the_next_link_keeps_the_page_size_and_starts_after_the_last_id(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    ids = add_projects(db, 3)
    response = client.get("/api/v1/projects?limit=2", headers=viewer.headers)
    assert _next_url(response) == f"http://testserver/api/v1/projects?limit=2&after={ids[1]}"


def test_a_list_without_paging_parameters_is_the_first_hundred_projects(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    """Clients that knew no paging still get a JSON list, of the first page."""
    ids = add_projects(db, 101)
    response = client.get("/api/v1/projects", headers=viewer.headers)
    assert [p["id"] for p in response.json()] == ids[:100]
    assert _next_url(response) == f"http://testserver/api/v1/projects?after={ids[99]}"
    last = client.get(_next_url(response) or "", headers=viewer.headers)
    assert [p["id"] for p in last.json()] == ids[100:]
    assert "link" not in last.headers


def test_a_last_page_that_is_exactly_full_has_no_next_link(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    ids = add_projects(db, 2)
    response = client.get("/api/v1/projects?limit=2", headers=viewer.headers)
    assert [p["id"] for p in response.json()] == ids
    assert "link" not in response.headers


def test_the_page_after_the_last_project_is_empty(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    ids = add_projects(db, 2)
    response = client.get(f"/api/v1/projects?after={ids[-1]}", headers=viewer.headers)
    assert (response.status_code, response.json()) == (200, [])
    assert "link" not in response.headers


BAD_PAGING = [
    "limit=0",
    "limit=201",
    "limit=-1",
    "limit=abc",
    "limit=1.5",
    "after=-1",
    "after=abc",
    f"after={2**31}",
]


@pytest.mark.parametrize("query", BAD_PAGING)
def test_paging_values_out_of_bounds_or_not_numbers_are_refused(
    client: TestClient, viewer: Actor, query: str
) -> None:
    response = client.get(f"/api/v1/projects?{query}", headers=viewer.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("query", [*BAD_PAGING[:5], "before=-1", "before=abc", f"before={2**31}"])
def test_audit_paging_values_out_of_bounds_or_not_numbers_are_refused(
    client: TestClient, db: Database, viewer: Actor, query: str
) -> None:
    project_id = add_projects(db, 1)[0]
    response = client.get(f"/api/v1/projects/{project_id}/audit?{query}", headers=viewer.headers)
    assert response.status_code == 422, response.text


def test_older_audit_events_are_read_page_by_page_newest_first(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    project_id = add_projects(db, 1)[0]
    ids = _add_events(db, project_id, 5)
    pages = _read_all_pages(client, viewer, f"/api/v1/projects/{project_id}/audit?limit=2")
    newest_first = ids[::-1]
    assert [[e["id"] for e in page] for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
    ]


def test_the_audit_trail_past_its_newest_200_events_can_be_read(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    """Only the newest 200 were answered, and no request reached the older ones."""
    project_id = add_projects(db, 1)[0]
    ids = _add_events(db, project_id, 201)
    first = client.get(f"/api/v1/projects/{project_id}/audit", headers=viewer.headers)
    assert [e["id"] for e in first.json()] == ids[:0:-1]
    expected = f"http://testserver/api/v1/projects/{project_id}/audit?before={ids[1]}"
    assert _next_url(first) == expected
    older = client.get(expected, headers=viewer.headers)
    assert [e["id"] for e in older.json()] == [ids[0]]
    assert "link" not in older.headers


def test_the_audit_page_before_the_oldest_event_is_empty(
    client: TestClient, db: Database, viewer: Actor
) -> None:
    project_id = add_projects(db, 1)[0]
    oldest = _add_events(db, project_id, 2)[0]
    response = client.get(
        f"/api/v1/projects/{project_id}/audit?before={oldest}", headers=viewer.headers
    )
    assert (response.status_code, response.json()) == (200, [])
    assert "link" not in response.headers


def test_the_audit_of_a_missing_project_is_not_found_whatever_the_paging(
    client: TestClient, viewer: Actor
) -> None:
    response = client.get("/api/v1/projects/987654/audit?limit=1", headers=viewer.headers)
    assert response.status_code == 404
