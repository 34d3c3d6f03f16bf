"""Hostile text in every field a person or a model can fill, rendered by every page that
shows it: nothing in the HTML would run script, and the policy forbids inline script anyway."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database
from tests.hardening import xss
from tests.hardening.web_helpers import sign_in
from tests.llm_server import ScriptedLLM


@pytest.fixture
def settings(model_settings: Settings) -> Settings:
    """The scripted model writes the replies and the generated code."""
    return model_settings


@pytest.fixture
def world(client: TestClient, db: Database, llm: ScriptedLLM) -> xss.HostileWorld:
    with db.transaction() as session:
        actor = xss.hostile_admin(session)
    return xss.build_world(client, llm, actor)


def test_the_corpus_reached_the_pages(client: TestClient, world: xss.HostileWorld) -> None:
    """Otherwise the audit below would pass on pages that show none of it."""
    sign_in(client, world.actor.email)
    thread = client.get(f"/threads/{world.thread_id}").text
    assert thread.count("window.__xss") >= 2 * len(xss.PAYLOADS) - 10
    generation = client.get(f"/generations/{world.generation_id}").text
    assert "window.__xss" in generation
    review = client.get(f"/projects/{world.project_id}").text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in review
    item = client.get(f"/items/{world.item_ids[0]}").text
    assert item.count("window.__xss") >= len(xss.PAYLOADS)  # the rationale is the corpus


def test_no_page_would_run_the_corpus(client: TestClient, world: xss.HostileWorld) -> None:
    sign_in(client, world.actor.email)
    running = f"/projects/{world.project_id}/meeting"
    pages = {f"{running} (running)": client.get(running)}
    assert "window.__xss" in pages[f"{running} (running)"].text
    xss.end_meeting(client, world)
    pages |= {path: client.get(path) for path in world.pages()}
    pages[f"/projects/{world.project_id} (htmx)"] = client.get(
        f"/projects/{world.project_id}", headers={"HX-Request": "true"}
    )
    for item_id in world.item_ids:
        pages[f"/items/{item_id} (htmx)"] = client.get(
            f"/items/{item_id}", headers={"HX-Request": "true"}
        )
    found: dict[str, list[str]] = {}
    for path, response in pages.items():
        assert response.status_code == 200, (path, response.status_code)
        problems = xss.audit(response.text) + [
            f"raw payload {p!r}" for p in xss.raw_payloads(response.text)
        ]
        if problems:
            found[path] = problems
    assert found == {}


def test_the_minutes_show_the_corpus_inert(client: TestClient, world: xss.HostileWorld) -> None:
    sign_in(client, world.actor.email)
    xss.end_meeting(client, world)
    minutes = client.get(f"/meetings/{world.meeting_id}").text
    assert "window.__xss" in minutes
    assert xss.audit(minutes) == []


@pytest.mark.parametrize("path", ["/", "/login", "/projects/1", "/threads/1", "/meetings/1"])
def test_every_page_forbids_inline_script(client: TestClient, path: str) -> None:
    policy = client.get(path, follow_redirects=False).headers["content-security-policy"]
    directives = {
        name: value
        for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))
    }
    script = directives.get("script-src", directives.get("default-src", ""))
    assert script == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy


def test_the_report_export_carries_a_policy_of_its_own(
    client: TestClient, world: xss.HostileWorld
) -> None:
    """A standalone file: no script and no request at all, only its own style block."""
    sign_in(client, world.actor.email)
    for path in (f"/projects/{world.project_id}", f"/api/v1/projects/{world.project_id}"):
        headers = {} if path.startswith("/projects") else world.actor.headers
        report = client.get(f"{path}/exports/report.html", headers=headers)
        assert report.status_code == 200, path
        policy = report.headers["content-security-policy"]
        directives = dict(part.strip().partition(" ")[::2] for part in policy.split(";"))
        assert directives["default-src"] == "'none'"  # so no script-src: no script at all
        assert "script-src" not in directives
        assert directives["style-src"].startswith("'sha256-")
        assert "unsafe-inline" not in policy
        assert xss.audit(report.text) == []
    assert report.headers["content-disposition"].startswith("inline")


@pytest.mark.parametrize(
    ("value", "scheme"),
    [
        ("javascript:alert(1)", "javascript"),
        (" JaVa\tScRiPt:alert(1)", "javascript"),
        ("\x01data:text/html,x", "data"),
        ("/projects/1", ""),
        ("https://example.test/", "https"),
    ],
)
def test_the_audit_reads_schemes_as_a_browser_does(value: str, scheme: str) -> None:
    assert xss.url_scheme(value) == scheme


def test_the_audit_catches_what_it_looks_for() -> None:
    """The audit must be able to fail: each of these is a problem it reports."""
    bad = [
        "<script>x()</script>",
        '<script src="https://evil.test/x.js"></script>',
        '<img src="x" onerror="x()">',
        '<a href="&#106;avascript:x()">x</a>',
        '<a href="data:text/html,x">x</a>',
        '<iframe src="/"></iframe>',
        '<div hx-get="/__xss">x</div>',
        '<meta http-equiv="refresh" content="0">',
        "<style>body{background:url(/__xss)}</style>",
    ]
    for html in bad:
        assert xss.audit(html), html
    assert xss.audit('<script src="/static/app.js" defer></script><a href="/x">x</a>') == []
