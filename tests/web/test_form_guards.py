"""Every element of the templates that writes through htmx is sent once and works without
JavaScript: a second click while the first is sent is dropped (htmx would otherwise queue it
and send it again: a double-click started two generations), and a plain form posts to the
same route (a form without ``action`` sent a GET carrying its CSRF token in the address)."""

import re

import pytest

from app.web.templating import TEMPLATE_DIR, templates

_WRITING_TAG = re.compile(r"<(?:form|button)\b[^>]*\bhx-(?:post|put|patch|delete)=[^>]*>", re.S)
_HTMX_ROUTE = re.compile(r'\bhx-post="([^"]*)"')
_ACTION = re.compile(r'\baction="([^"]*)"')


def _writing_tags() -> list[tuple[str, str]]:
    return [
        (path.relative_to(TEMPLATE_DIR).as_posix(), match.group(0))
        for path in sorted(TEMPLATE_DIR.rglob("*.html"))
        for match in _WRITING_TAG.finditer(path.read_text())
    ]


def test_the_templates_have_forms_that_write_through_htmx() -> None:
    # The checks below read the templates' text: they would pass on nothing at all.
    assert len(_writing_tags()) >= 15


@pytest.mark.parametrize(("template", "tag"), _writing_tags())
def test_a_form_that_writes_through_htmx_is_sent_once(template: str, tag: str) -> None:
    rendered = tag.replace("{{ SENT_ONCE }}", str(templates.env.globals["SENT_ONCE"]))
    assert 'hx-sync="this:drop"' in rendered, f"{template}: {tag}"
    assert "hx-disabled-elt=" in rendered, f"{template}: {tag}"


@pytest.mark.parametrize(("template", "tag"), _writing_tags())
def test_a_form_that_writes_through_htmx_posts_the_same_route_without_javascript(
    template: str, tag: str
) -> None:
    htmx_route = _HTMX_ROUTE.search(tag)
    plain_route = _ACTION.search(tag)
    assert htmx_route is not None, f"{template}: not a POST form: {tag}"
    assert plain_route is not None, f"{template}: no action: {tag}"
    assert 'method="post"' in tag, f"{template}: {tag}"
    assert plain_route.group(1) == htmx_route.group(1), f"{template}: {tag}"
