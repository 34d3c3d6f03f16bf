"""A corpus of hostile text, a project full of it, and an audit of the HTML pages show.

Every payload, if it ever ran, would set ``window.__xss``; the browser test checks the flag.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models.enums import Role
from app.services import users
from tests.conftest import Actor
from tests.llm_server import ScriptedLLM

MARK = "__xss"
PAYLOADS = [
    "<script>window.__xss=1</script>",
    "<SCRIPT SRC=//evil.test/__xss.js></SCRIPT>",
    "<img src=x onerror=window.__xss=1>",
    '<img src="x" onerror="window.__xss=1">',
    "<svg onload=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    "<svg/onload=window.__xss=1>",
    '"><script>window.__xss=1</script>',
    "'><img src=x onerror=window.__xss=1>",
    '" onmouseover="window.__xss=1" x="',
    "' onfocus='window.__xss=1' autofocus x='",
    '"/><svg onload=window.__xss=1>',
    "</textarea><script>window.__xss=1</script>",
    "</title><script>window.__xss=1</script>",
    '<a href="javascript:window.__xss=1">link</a>',
    "[md link](javascript:window.__xss=1)",
    "[md link upper](JaVaScRiPt:window.__xss=1)",
    "[md link tab](java\tscript:window.__xss=1)",
    "[md entity](&#106;avascript:window.__xss=1)",
    "[md data](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    "![md image](javascript:window.__xss=1)",
    "![md svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9d2luZG93Ll9feHNzPTE+)",
    "[ref link][r]\n\n[r]: javascript:window.__xss=1",
    "<javascript:window.__xss=1>",
    '<a href="&#106;&#97;vascript:window.__xss=1">entities</a>',
    '<a href="&#x6A;avascript&colon;window.__xss=1">hex entities</a>',
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    '<iframe src="javascript:window.__xss=1"></iframe>',
    '<object data="data:text/html,<script>window.__xss=1</script>"></object>',
    '<embed src="data:text/html,<script>window.__xss=1</script>">',
    '<base href="javascript:window.__xss=1//">',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    '<form action="javascript:window.__xss=1"><button>go</button></form>',
    '<div style="background:url(javascript:window.__xss=1)">styled</div>',
    "<details open ontoggle=window.__xss=1>",
    "<scr<script>ipt>window.__xss=1</scr</script>ipt>",
    "<<script>script>window.__xss=1<</script>/script>",
    '<!--<img src="--><img src=x onerror=window.__xss=1>-->',
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=1>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    '<div hx-get="/logout" hx-trigger="load" hx-on:htmx:load="window.__xss=1">htmx</div>',
    '<a hx-post="/logout" hx-trigger="load">htmx post</a>',
    "`<script>window.__xss=1</script>` in code",
    "```html\n<script>window.__xss=1</script>\n```",
    "{{ 7*7 }} {% if true %}__xss template{% endif %}",
]
TEXT = "\n\n".join(PAYLOADS)
# A name must fit in 200 characters; the email has no space, so the address form accepts it.
NAME = '"><img src=x onerror=window.__xss=1>'
EMAIL = '"><svg/onload=window.__xss=1>@example.test'
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class HostileWorld:
    actor: Actor
    project_id: int
    thread_id: int
    meeting_id: int
    generation_id: int
    item_ids: tuple[int, ...]

    def pages(self) -> list[str]:
        project = f"/projects/{self.project_id}"
        return [
            "/",
            project,
            f"{project}/gate",
            f"{project}/threads/new",
            f"{project}/meeting",
            f"{project}/exports/report.html",
            f"/threads/{self.thread_id}",
            f"/meetings/{self.meeting_id}",
            f"/generations/{self.generation_id}",
            "/admin/users",
            "/admin/tokens",
            # An item's decision, revisions and form load on their own when it is opened.
            *(f"/items/{item_id}" for item_id in self.item_ids),
        ]


def hostile_admin(session: Session) -> Actor:
    user = users.create_user(session, email=EMAIL, name=NAME, role=Role.ADMIN, password=PASSWORD)
    _token, plain = users.create_token(session, user=user, label=NAME)
    return Actor(user.id, user.email, Role.ADMIN, plain)


def build_world(client: TestClient | httpx.Client, llm: ScriptedLLM, actor: Actor) -> HostileWorld:
    """A project whose every text field, item, decision, thread, reply, meeting and generation
    is made of the corpus, through the API as a client would send it."""
    headers = actor.headers
    body = {
        "name": NAME,
        "problem": TEXT,
        "architecture": TEXT,
        "data_model": TEXT,
        "constraints": TEXT,
    }
    project = _ok(client.post("/api/v1/projects", json=body, headers=headers))
    pid = project["id"]
    item = {"category": "load", "title": PAYLOADS[2], "question": TEXT}
    _ok(client.post(f"/api/v1/projects/{pid}/checklist", json=item, headers=headers))
    items = _ok(client.get(f"/api/v1/projects/{pid}/checklist", headers=headers))
    thread = _ok(
        client.post(
            f"/api/v1/projects/{pid}/threads",
            json={"mode": "open", "title": NAME},
            headers=headers,
        )
    )
    llm.script(TEXT, TEXT)  # the debate reply, then the generated code
    _ok(
        client.post(
            f"/api/v1/threads/{thread['id']}/messages", json={"content": TEXT}, headers=headers
        )
    )
    meeting = _ok(client.post(f"/api/v1/projects/{pid}/meetings", headers=headers))
    mid = meeting["id"]
    _ok(
        client.post(
            f"/api/v1/meetings/{mid}/current-item",
            json={"item_id": items[0]["id"]},
            headers=headers,
        )
    )
    for index, entry in enumerate(items):
        decision = {
            "status": "decided",
            "summary": PAYLOADS[index % len(PAYLOADS)],
            "rationale": TEXT,
            "alternatives": PAYLOADS[:10],
            "version": 0,
        }
        url = f"/api/v1/meetings/{mid}/items/{entry['id']}/decision"
        _ok(client.put(url, json=decision, headers=headers))
    vote = {"item_id": items[0]["id"], "vote": "agree"}
    _ok(client.post(f"/api/v1/meetings/{mid}/votes", json=vote, headers=headers))
    generation = _ok(
        client.post(
            f"/api/v1/projects/{pid}/generations", json={"instructions": TEXT}, headers=headers
        )
    )
    item_ids = tuple(entry["id"] for entry in items)
    return HostileWorld(actor, pid, thread["id"], mid, generation["id"], item_ids)


def end_meeting(client: TestClient | httpx.Client, world: HostileWorld) -> None:
    _ok(client.post(f"/api/v1/meetings/{world.meeting_id}/end", headers=world.actor.headers))


def wait_until_written(client: httpx.Client, world: HostileWorld) -> None:
    """A real server writes the reply and the code after answering; wait for both."""
    headers = world.actor.headers
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        thread = _ok(client.get(f"/api/v1/threads/{world.thread_id}", headers=headers))
        generation = _ok(client.get(f"/api/v1/generations/{world.generation_id}", headers=headers))
        replies = [m for m in thread["messages"] if m["role"] == "assistant"]
        if generation["status"] != "streaming" and all(m["status"] != "streaming" for m in replies):
            assert replies, thread
            assert replies[-1]["status"] == "complete", replies
            assert generation["status"] == "complete", generation
            return
        time.sleep(0.1)
    raise AssertionError("the reply and the generation were not written within 30 s")


def _ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "data", "xlink:href", "poster", "background", "srcset"}
)
# Attributes that hold text as text: a payload in them is shown, never run.
TEXT_ATTRIBUTES = frozenset({"value", "title", "alt", "aria-label", "placeholder", "content"})
FORBIDDEN_TAGS = frozenset({"iframe", "object", "embed", "base", "frame", "frameset", "applet"})
# The standalone report styles itself inline; a style element with a payload in it is not ours.
RAW_TEXT_TAGS = frozenset({"script", "style"})
APP_SCRIPTS = re.compile(r"^/static/[\w./-]+\.js$")
_CONTROL = re.compile(r"[\x00-\x20]")


def url_scheme(value: str) -> str:
    """The scheme a browser would see: tabs, newlines and controls are dropped first."""
    cleaned = _CONTROL.sub("", value).lower()
    match = re.match(r"^([a-z][a-z0-9+.-]*):", cleaned)
    return match.group(1) if match else ""


class Audit(HTMLParser):
    """Everything in a page that would run script or leave the page, as a list of problems."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._raw_text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        where = f"<{tag}>"
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"{where} element")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):
            self.problems.append(f"{where} with http-equiv")
        if tag == "script":
            src = dict(attrs).get("src") or ""
            if not APP_SCRIPTS.match(src):
                self.problems.append(f"{where} not one of the app's own: {src!r}")
        if tag in RAW_TEXT_TAGS:
            self._raw_text = tag
        for name, value in attrs:
            self._attribute(where, name, value or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._raw_text = None

    def _attribute(self, where: str, name: str, value: str) -> None:
        if name.startswith("on"):
            self.problems.append(f"{where} event handler {name}={value!r}")
        if name in URL_ATTRIBUTES and url_scheme(value) in {"javascript", "data", "vbscript"}:
            self.problems.append(f"{where} {name}={value!r}")
        if MARK in value and name not in TEXT_ATTRIBUTES:
            self.problems.append(f"{where} payload inside {name}={value!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw_text:
            self._raw_text = None

    def handle_data(self, data: str) -> None:
        if self._raw_text == "script" and data.strip():
            self.problems.append(f"inline script: {data[:60]!r}")
        if self._raw_text == "style" and MARK in data:
            self.problems.append(f"payload in a style element: {data[:60]!r}")


def audit(html: str) -> list[str]:
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser.problems


def raw_payloads(html: str) -> list[str]:
    """Payloads that reached the page as they were written (markup unescaped)."""
    return [payload for payload in PAYLOADS if "<" in payload and payload in html]
