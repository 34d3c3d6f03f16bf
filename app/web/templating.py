"""Jinja2 rendering for the HTML routes: a full page, or only its partial for htmx."""

import secrets
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nh3
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from app.markdown import MAX_NESTING, RenderedByText, render_markdown
from app.models.enums import Category, DecisionStatus, Role, ThreadMode
from app.services.catalog import CATEGORY_LABELS
from app.web.deps import SignedIn
from app.web.forms import decision_values
from app.web.rows import item_row_of, kept

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

TEMPLATE_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
templates = Jinja2Templates(directory=TEMPLATE_DIR)

STATE_LABELS = {
    "open": "open",
    "decided": "decided",
    "accepted_risk": "accepted risk",
    "not_applicable": "not applicable",
    "stale": "stale",
}
STATUS_CHOICES = [
    (DecisionStatus.DECIDED.value, "Decided"),
    (DecisionStatus.ACCEPTED_RISK.value, "Accepted risk"),
    (DecisionStatus.NOT_APPLICABLE.value, "Not applicable"),
]
MODE_LABELS = {
    ThreadMode.BLIND.value: "Blind round",
    ThreadMode.FAILURE_WALK.value: "Failure walk",
    ThreadMode.CHALLENGE.value: "Challenge (devil's advocate)",
    ThreadMode.OPEN.value: "Open discussion",
}
MESSAGE_STATUS_LABELS = {
    "streaming": "writing",
    "complete": "complete",
    "error": "failed",
    "interrupted": "interrupted",
}
FLAG_LABELS = {
    "capitulated": "capitulated",
    "position_changed": "changed position",
    "fallback": "fallback model",
    "pushback": "pushback",
}


@lru_cache(maxsize=1)
def _plain_markdown() -> "MarkdownIt":
    # Imported on the first render rather than at start-up.
    from markdown_it import MarkdownIt

    return MarkdownIt("js-default", {"maxNesting": MAX_NESTING})


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _plain_html(text: str) -> str:
    return nh3.clean(_plain_markdown().render(text))


_rendered_plain = RenderedByText(_plain_html)


def markdown(text: str) -> Markup:
    """Markdown to HTML: raw HTML in the source is escaped, then the result is sanitised."""
    return Markup(_rendered_plain(text))  # noqa: S704 (sanitised by _plain_html)


def model_markdown(text: str) -> Markup:
    """A model's (or a person's) Markdown as the sanitised HTML of app.markdown, never raw."""
    return Markup(render_markdown(text))  # noqa: S704 (sanitised by render_markdown)


def _cost(value: float | None) -> str:
    """Unknown costs say so instead of showing as free."""
    return "unknown" if value is None else f"${value:.4f}"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


_LABEL_OF_KEY = {category.value: label for category, label in CATEGORY_LABELS.items()}


def _category_label(key: str) -> str:
    """A built-in category's label, a custom key as it is (a dict lookup: called per item)."""
    return _LABEL_OF_KEY.get(key, key)


templates.env.filters["when"] = _when
templates.env.filters["markdown"] = markdown
templates.env.filters["category_label"] = _category_label
templates.env.filters["model_markdown"] = model_markdown
templates.env.filters["cost"] = _cost
templates.env.filters["duration"] = _duration
templates.env.filters["mode_label"] = lambda mode: MODE_LABELS.get(mode, mode)
templates.env.filters["state_label"] = lambda state: STATE_LABELS.get(state, state)
templates.env.globals["CATEGORIES"] = [(c.value, CATEGORY_LABELS[c]) for c in Category]
templates.env.globals["STATUS_CHOICES"] = STATUS_CHOICES
templates.env.globals["ROLES"] = [r.value for r in Role]
templates.env.globals["decision_values"] = decision_values
templates.env.globals["item_row_of"] = item_row_of
templates.env.globals["kept"] = kept
templates.env.globals["MODE_LABELS"] = MODE_LABELS
templates.env.globals["MESSAGE_STATUS_LABELS"] = MESSAGE_STATUS_LABELS
templates.env.globals["FLAG_LABELS"] = FLAG_LABELS
# Every htmx form that writes carries these: a second click while the first is sent is
# dropped (htmx would queue it and send it again) and the submit button is disabled meanwhile.
templates.env.globals["SENT_ONCE"] = Markup(
    'hx-sync="this:drop" hx-disabled-elt="find button[type=\'submit\']"'
)


def is_htmx(request: Request) -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    if "session" not in request.scope:
        return ""  # paths outside the cookie session (static files) have no forms
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def base_context(request: Request) -> dict[str, Any]:
    user: SignedIn | None = getattr(request.state, "user", None)
    return {
        "user": user,
        "csrf_token": csrf_token(request),
        "can_write": user is not None and user.role != Role.VIEWER,
        "is_admin": user is not None and user.role == Role.ADMIN,
    }


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The full page, or only ``partial`` when htmx asks for it."""
    name = partial if partial and is_htmx(request) else template
    return fragment(request, name, context, status_code=status_code, headers=headers)


def fragment(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {**base_context(request), **context},
        status_code=status_code,
        headers=headers,
    )


def render_page(request: Request, template: str, context: dict[str, Any]) -> str:
    """A whole page as a string, with what every page knows of its viewer."""
    return render_text(template, {**base_context(request), **context})


def render_text(template: str, context: dict[str, Any]) -> str:
    """A fragment as a string, for server-sent events (no request at hand)."""
    return templates.env.get_template(template).render(context)
