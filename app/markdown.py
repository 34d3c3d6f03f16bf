"""Model output as HTML that cannot run anything on our pages.

Two layers, because model text is attacker-controlled (a prompt can ask for anything):
markdown-it's "js-default" preset escapes raw HTML and refuses javascript: links, then
nh3 (ammonia) keeps only the tags and attributes below. No tag keeps an event handler,
a style, an id, a class, or any hx-* / data-* attribute, so htmx cannot be steered either.
"""

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


def render_markdown(text: str) -> str:
    """Safe HTML for a model's (or a person's) Markdown; never mark raw text as safe."""
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
