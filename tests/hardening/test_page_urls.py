"""Every page's URL with hostile path and query values: never a server error.

The form fuzzer (test_form_fuzz.py) posts to every page form; the pages' GET routes take ids
in their paths and a few query values (a debate's mode and item, the page to go back to after
signing in), read here from the app, so a new page is probed without being listed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db import Database
from app.models.enums import Role
from tests.conftest import Actor, make_actor
from tests.hardening.test_form_fuzz import HOSTILE, fuzzing_world
from tests.hardening.web_helpers import page_routes, sign_in

# Event streams answer with a stream that does not end; their ids are probed, not read on.
STREAMS = re.compile(r"/events$")


def _fill(path: str, ids: dict[str, Any], hostile: str | None) -> str:
    """The path with its ids filled in, each one ``hostile`` when given."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if hostile is not None:
            return quote(hostile, safe="")
        return str(ids.get(name, "design-pack.md" if name == "name" else 1))

    return re.sub(r"\{(\w+)\}", value, path)


def _a_number(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


# What fits in a URL (servers refuse request lines of 100,000 characters before the app).
IN_URLS = [value for value in HOSTILE if len(value) < 1_000]


def test_every_page_url_answers_hostile_ids_and_queries_without_a_server_error(
    app: FastAPI, client: TestClient, db: Database, admin: Actor
) -> None:
    other = make_actor(db, Role.MEMBER)
    ids = fuzzing_world(client, admin, other)
    sign_in(client, admin.email)
    # Each page GET route's path and the names of its query parameters.
    routes = [
        (path, [param.alias for param in route.dependant.query_params])
        for path, route in page_routes(app, "GET").items()
    ]
    # Signed in, with ids that exist: the probes reach the pages, not the sign-in redirect.
    for page in ("/projects/{project_id}", "/threads/{thread_id}", "/admin/users"):
        assert client.get(_fill(page, ids, None)).status_code == 200, page
    assert ("/projects/{project_id}/threads/new", ["mode", "item_id"]) in routes
    failures, probed = [], 0
    for path, queries in routes:
        stream = bool(STREAMS.search(path))
        # An event stream found answers with a stream that does not end: its ids are probed
        # with what cannot be one, and its query values (what the page already shows, only
        # compared with what is current) not at all.
        values = [value for value in IN_URLS if not (stream and _a_number(value))]
        urls = [_fill(path, ids, value) for value in values if "{" in path]
        urls += [
            f"{_fill(path, ids, None)}?{name}={quote(value, safe='')}"
            for name in ([] if stream else queries)
            for value in values
        ]
        for url in urls:
            status = client.get(url, follow_redirects=False).status_code
            probed += 1
            if status >= 500:
                failures.append(f"{url[:120]}: {status}")
    assert failures == []
    assert probed > 300  # 412 when written: 18 pages and 4 event streams
