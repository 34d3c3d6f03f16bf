"""Model output is rendered without any way to run script or steer htmx on our pages."""

import uuid
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.markdown import (
    ALLOWED_TAGS,
    MAX_NESTING,
    RenderedByText,
    render_markdown,
    sanitised_html,
)
from tests import factories
from tests.conftest import Actor
from tests.debates.helpers import (
    add_streaming_reply,
    last_reply,
    replies,
    say,
    start_thread,
    thread,
)
from tests.llm_server import ScriptedLLM

XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![x](javascript:alert(1))",
    '<div hx-get="/api/v1/projects" hx-trigger="load">x</div>',
    '<p data-hx-post="/logout" data-hx-trigger="load">x</p>',
    '<button hx-on:click="alert(1)">x</button>',
    '<form action="/x"><input name=a></form>',
    "<style>body{display:none}</style>",
    '<a href="https://example.com" onclick="alert(1)" style="x">ok</a>',
    "<details open ontoggle=alert(1)>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<!--<script>alert(1)</script>-->",
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "<<script>script>alert(1)<</script>/script>",
    '<object data="javascript:alert(1)"></object>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '[x](https://example.com "title" onmouseover=alert(1))',
]


class _Elements(HTMLParser):
    """Every element and attribute in a piece of HTML, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_rendered_markdown_cannot_run_script_or_drive_htmx(payload: str) -> None:
    html = render_markdown(payload)
    for tag, attributes in _elements(html):
        assert tag in ALLOWED_TAGS, tag
        for name, value in attributes.items():
            assert not name.startswith("on"), name
            assert not name.startswith(("hx-", "data-")), name
            assert name not in {"style", "src", "action", "formaction"}, name
            if name == "href":
                assert (value or "").startswith(("http://", "https://", "mailto:")), value
    assert "<script" not in html.lower()


def test_ordinary_markdown_still_renders() -> None:
    html = render_markdown(
        "# Design 1\n\n- **queue** and *outbox*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "[docs](https://example.com)\n\n```\ncode\n```"
    )
    assert "<h1>Design 1</h1>" in html
    assert "<strong>queue</strong>" in html
    assert "<table>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">docs</a>' in html
    assert "<pre><code>code\n</code></pre>" in html


def test_nesting_stops_at_twenty_levels_as_in_commonmark() -> None:
    """The link parser looked as far ahead as things may nest for every "[" that closed
    nothing: at "js-default"'s 100, a message of 50,000 "![" took 6.5 s to render, at 20
    1.6 s (bench/markdown.py). Quotes, lists and link labels all stop nesting at 20."""
    quoted = render_markdown(">" * 40 + " deep")
    label = "[" * 30 + "x" + "]" * 30
    linked = render_markdown(f"{label}(https://example.com)")

    assert quoted.count("<blockquote>") == MAX_NESTING == 20
    assert "<a " not in linked  # too deep to be a link: shown as the text it is
    assert label in linked
    assert "<a " in render_markdown("[[x]](https://example.com)")  # shallow ones still are


def test_a_script_tag_in_model_output_is_inert_in_content_html(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    hostile = 'Design 1 <script>alert("x")</script> <div hx-get="/api/v1/me" hx-trigger="load">'
    llm.script(hostile)
    say(client, member, blind["id"], "Propose designs.")
    reply = last_reply(client, member, blind["id"])
    assert reply["content"] == hostile  # raw content is kept as the model wrote it
    assert "<script" not in reply["content_html"]
    assert "&lt;script&gt;" in reply["content_html"]
    assert all(
        not name.startswith("hx-") for _, a in _elements(reply["content_html"]) for name in a
    )


def _counting_renderer(budget_chars: int) -> tuple[RenderedByText, list[str]]:
    rendered: list[str] = []

    def render(text: str) -> str:
        rendered.append(text)
        return sanitised_html(text)

    return RenderedByText(render, budget_chars), rendered


def test_a_text_is_rendered_once_then_served_as_kept() -> None:
    kept, rendered = _counting_renderer(budget_chars=1_000)

    first = kept("**bold** and [a link](https://example.com)")
    again = kept("**bold** and [a link](https://example.com)")

    assert first == again == sanitised_html("**bold** and [a link](https://example.com)")
    assert rendered == ["**bold** and [a link](https://example.com)"]
    assert kept("*other*") == "<p><em>other</em></p>\n"
    assert len(rendered) == 2


def test_the_least_recently_used_texts_leave_first_and_a_text_past_the_budget_is_not_kept() -> None:
    # Source and HTML: "one" and "two" 14 characters each, "three" 19, "four" 17.
    kept, rendered = _counting_renderer(budget_chars=60)
    for text in ("one", "two", "three", "one"):  # 47 kept; "two" now the least recent
        kept(text)
    kept("four")  # 64: "two" leaves
    rendered.clear()
    for text in ("one", "three", "four"):
        kept(text)
    assert rendered == []
    kept("two")
    assert rendered == ["two"]
    assert kept.kept_chars <= kept.budget_chars

    huge = "x" * 100
    assert kept(huge) == kept(huge) == f"<p>{huge}</p>\n"  # still rendered, each time
    assert rendered[1:] == [huge, huge]


def test_a_threads_messages_are_rendered_once_however_often_it_is_read(
    client: TestClient, member: Actor, llm: ScriptedLLM, db: Database
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    unique = f"run {uuid.uuid4()}"
    llm.script(f"## Design 1 of {unique}\n\nAn *outbox*.")
    say(client, member, blind["id"], f"Propose designs for {unique}.")
    add_streaming_reply(db, blind["id"], 0, f"Design 2 of {unique}, stre", model="m", turn=2)

    first = thread(client, member, blind["id"])
    renders = render_markdown.renders
    again = thread(client, member, blind["id"])

    assert again["messages"] == first["messages"]
    assert "<h2>Design 1 of" in replies(first)[0]["content_html"]
    assert "stre</p>" in replies(first)[-1]["content_html"]
    assert render_markdown.renders == renders  # nothing rendered again
    # A streaming reply's text is new at every read: rendered, never kept.
    streaming = f"Design 2 of {unique}, stre"
    assert "stre</p>" in render_markdown(streaming)
    assert render_markdown.renders == renders + 1
