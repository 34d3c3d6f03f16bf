"""Model output as HTML that cannot run anything on our pages.

Two layers, because model text is attacker-controlled (a prompt can ask for anything):
markdown-it's "js-default" preset escapes raw HTML and refuses javascript: links, then
nh3 (ammonia) keeps only the tags and attributes below. No tag keeps an event handler,
a style, an id, a class, or any hx-* / data-* attribute, so htmx cannot be steered either.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre",
        "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# How deep brackets, quotes and lists may nest. The "js-default" preset allows 100, and each
# "[" that closes nothing made the link parser look that far ahead: a 100,000-character
# message of "![" took 6.5 s to render, on the one interpreter every page shares, at each
# view. At CommonMark's own 20 it takes 1.6 s (bench/markdown.py); no real text nests deeper.
MAX_NESTING = 20


@lru_cache(maxsize=1)
def _parser() -> "MarkdownIt":
    # Imported on the first render, not at start-up: no page needs it before a model replies.
    from markdown_it import MarkdownIt

    return (
        MarkdownIt("js-default", {"maxNesting": MAX_NESTING})
        .enable("table")
        .enable("strikethrough")
    )


# Characters of source and HTML kept by ``RenderedByText``: a few megabytes, room for the
# messages of the threads in use (a 100,000-character reply takes about a tenth of it).
KEPT_CHARS = 2_000_000


class RenderedByText:
    """HTML already rendered, kept by its source text, least recently used out first.

    A thread page, and every API read of a thread or of a new message for each of its event
    streams' subscribers, rendered every message again, though a message's text changes only
    while it streams. A normal 100,000-character reply takes 70 to 150 ms to render, and one
    built to be slow 1.6 s: both were paid at every view. Keyed by the text itself, so a hit
    is exact; safe across the worker threads.
    """

    def __init__(self, render: Callable[[str], str], budget_chars: int = KEPT_CHARS) -> None:
        self.render = render
        self.budget_chars = budget_chars
        self.kept_chars = 0
        self.renders = 0
        self._html: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        with self._lock:
            html = self._html.get(text)
            if html is not None:
                self._html.move_to_end(text)
                return html
        html = self.render(text)  # outside the lock: other texts need not wait for this one
        with self._lock:
            self.renders += 1
            self._keep(text, html)
        return html

    def _keep(self, text: str, html: str) -> None:
        size = len(text) + len(html)
        if size > self.budget_chars or text in self._html:
            return
        self._html[text] = html
        self.kept_chars += size
        while self.kept_chars > self.budget_chars:
            dropped, dropped_html = self._html.popitem(last=False)
            self.kept_chars -= len(dropped) + len(dropped_html)


def sanitised_html(text: str) -> str:
    """Safe HTML for a model's (or a person's) Markdown, rendered each time it is asked."""
    if not text:
        return ""
    html = _parser().render(text)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


# Safe HTML for a model's (or a person's) Markdown; never mark raw text as safe.
render_markdown = RenderedByText(sanitised_html)
