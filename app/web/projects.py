"""Project list, new project, and the review page with its design, checklist and gate."""

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.api.params import AfterId, PathId
from app.config import Settings
from app.deps import SessionDep, SettingsDep, TemplatesDep
from app.errors import Conflict, InvalidInput
from app.models import User
from app.schemas.checklist import ChecklistItemCreate, DecisionWrite
from app.schemas.common import Id
from app.schemas.project import ProjectCreate, ProjectUpdate
from app.schemas.template import DEFAULT_TEMPLATE
from app.services import debate_overview, decisions, meetings, projects, review, templates
from app.services.decisions import ItemWithDecision
from app.services.gate import gate, gates
from app.web import regions
from app.web.deps import (
    SignedIn,
    WebUser,
    WebWriter,
    check_csrf,
    require_setup_done,
    signed_in_read,
)
from app.web.errors import redirect
from app.web.forms import FieldErrors, decision_values, lines, parse, values
from app.web.page_cache import PageKey, RenderedPages
from app.web.templating import (
    base_context,
    csrf_token,
    fragment,
    is_htmx,
    page,
    render_page,
    render_text,
)

router = APIRouter(dependencies=[Depends(require_setup_done), Depends(check_csrf)])
PROJECT_FIELDS = ("name", "problem", "architecture", "data_model", "constraints")
ITEM_FIELDS = ("category", "title", "question")
DECISION_FIELDS = ("status", "summary", "rationale", "alternatives", "version", "meeting_id")
PROJECTS_PER_PAGE = 50


@router.get("/", response_class=HTMLResponse)
def project_list(
    request: Request, session: SessionDep, user: WebUser, after: AfterId = 0
) -> Response:
    """A page of projects by id, each with the state of its gate, and links to the next
    page and back to the first."""
    found = projects.project_page(session, after=after, limit=PROJECTS_PER_PAGE)
    states = gates(session, found.rows)
    context = {
        "rows": [(project, states[project.id]) for project in found.rows],
        "first_page": after == 0,
        "next_after": found.rows[-1].id if found.more else None,
    }
    return page(request, "projects.html", context, partial="_project_list.html")


@router.get("/projects/new", response_class=HTMLResponse)
def new_project_form(
    request: Request, session: SessionDep, catalog: TemplatesDep, user: WebWriter
) -> Response:
    """The form for a new design review, with the checklist templates to start from."""
    options = templates.list_templates(session, catalog=catalog)
    context = {"values": {"template": DEFAULT_TEMPLATE}, "errors": {}, "templates": options}
    return page(request, "project_new.html", context)


@router.post("/projects", response_class=HTMLResponse)
async def create_project(
    request: Request, session: SessionDep, catalog: TemplatesDep, user: WebWriter
) -> Response:
    """Create the project with its template's checklist, then open its review page."""
    submitted = values(await request.form(), *PROJECT_FIELDS, "template")
    data, errors = parse(ProjectCreate, {k: v for k, v in submitted.items() if v})
    if data is not None:
        try:
            project = projects.create_project(session, data=data, actor=user, catalog=catalog)
            return redirect(request, f"/projects/{project.id}")
        except InvalidInput as exc:
            errors = {str(exc.extensions.get("field", "form")): exc.detail}
    options = templates.list_templates(session, catalog=catalog)
    context = {"values": submitted, "errors": errors, "templates": options}
    return page(request, "project_new.html", context, partial="_project_form.html", status_code=422)


@router.get("/projects/{project_id}", response_class=HTMLResponse)
async def review_page(request: Request, project_id: PathId, settings: SettingsDep) -> Response:
    """The design, the checklist by category (one row per item), debates and the gate."""

    def rendered(session: Session, viewer: SignedIn) -> str:
        # One read of the revisions decides whether the last rendering still holds, and if
        # not, whether the page outside its debates section does.
        revisions = review.page_revisions(session, project_id=project_id)
        key = PageKey(
            project_id, revisions.review, viewer.id, viewer.name, viewer.role, csrf_token(request)
        )
        rest_key = key._replace(revision=revisions.outside_debates)
        pages: RenderedPages = request.app.state.review_pages
        return pages.get_or_render(
            key, lambda: _render_review(request, session, project_id, settings, rest_key)
        )

    return HTMLResponse(await signed_in_read(request, rendered))


# Stand-ins for what the debates section shows, in the kept rest of the review page: HTML
# comments, which no escaped text can spell (they start with "<"), with a random part.
_DEBATES_LIST = f"<!-- debates {secrets.token_hex(8)} -->"
_START_THREAD_OPEN = f"<!-- open {secrets.token_hex(8)} -->"


def _render_review(
    request: Request, session: Session, project_id: int, settings: Settings, rest_key: PageKey
) -> str:
    """The page: its debates section rendered now, into the rest of it, kept while nothing
    outside that section changed (a posted question, a reply starting or ending changes only
    the section, and the rest is most of the rendering's cost)."""
    # The item titles the thread rows name, when the rest is rendered here (its checklist
    # has them); read with the debates otherwise.
    titles: dict[int, str] | None = None

    def render_rest() -> str:
        nonlocal titles
        found = review.review(session, project_id=project_id)
        titles = {entry.item.id: entry.item.title for entry in found.items}
        return _render_review_rest(request, found, settings)

    rests: RenderedPages = request.app.state.review_page_rests
    rest = rests.get_or_render(rest_key, render_rest)
    return _with_debates(session, project_id, rest, titles)


def _with_debates(
    session: Session, project_id: int, rest: str, titles: dict[int, str] | None
) -> str:
    debates = debate_overview.project_debates(session, project_id=project_id, item_titles=titles)
    listing = render_text("_debates_list.html", {"debates": debates})
    opened = "" if debates.threads else " open"
    return rest.replace(_START_THREAD_OPEN, opened, 1).replace(_DEBATES_LIST, listing, 1)


def _render_review_rest(
    request: Request, found: review.Review, settings: Settings, **forms: Any
) -> str:
    """The page but its debates section; ``forms`` holds a form as sent when an answer to
    it is the whole page (sent without JavaScript): the design form's values, errors and
    conflict, or the checklist item form's context as ``item_form``."""
    context = _review_context(found, **{"values": _project_values(found), "errors": {}, **forms})
    context.update(
        debates_list=Markup(_DEBATES_LIST),  # noqa: S704 (a constant comment)
        start_thread_open=Markup(_START_THREAD_OPEN),  # noqa: S704 (a constant comment)
        thread_values={"mode": "blind", "models": settings.debate_models},
        items=found.items,
        selectable_models=settings.selectable_models,
    )
    return render_page(request, "review.html", context)


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: PathId, session: SessionDep, user: WebUser) -> Response:
    """One checklist item: its question, decision, revision history and (for writers) the
    decision form; the review page fetches this part when an item is opened."""
    detail = review.item_detail(session, item_id=item_id)
    context = {"project": detail.project, "entry": detail.entry, "history": detail.history}
    return page(request, "item.html", context, partial="_item_panel.html")


@router.get("/items/{item_id}/row", response_class=HTMLResponse)
def item_row(request: Request, item_id: PathId, session: SessionDep, user: WebUser) -> Response:
    """An item's row of the review page alone: a page adds the row of an item made after
    it loaded."""
    detail = review.item_detail(session, item_id=item_id)
    return fragment(request, "_item_row.html", {"entry": detail.entry})


def _review_context(found: review.Review, **extra: Any) -> dict[str, Any]:
    return {"review": found, "project": found.project, "gate": found.gate, **extra}


@router.get("/projects/{project_id}/gate", response_class=HTMLResponse)
def gate_panel(
    request: Request, project_id: PathId, session: SessionDep, user: WebUser
) -> Response:
    """The gate panel alone: open or closed, and the missing and stale items."""
    project = projects.get_project(session, project_id)
    return fragment(request, "_gate.html", {"project": project, "gate": gate(session, project)})


@router.post("/projects/{project_id}/design", response_class=HTMLResponse)
async def save_design(
    request: Request,
    project_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
    user: WebWriter,
) -> Response:
    """Save the fields changed since the form was read, merged with any version saved
    since; a field someone else changed too is a conflict that keeps the typed text."""
    submitted = values(await request.form(), *PROJECT_FIELDS, *BASE_FIELDS, "version")
    edit = {name: submitted[name] for name in (*PROJECT_FIELDS, "version")}
    data, errors = parse(ProjectUpdate, edit)
    if data is None:
        return _design_answer(request, session, project_id, settings, submitted, errors=errors)
    base = {name: submitted[f"base_{name}"] for name in PROJECT_FIELDS if submitted[f"base_{name}"]}
    try:
        project = projects.merge_edit(
            session, project_id=project_id, data=data, base=base, actor=user
        )
    except Conflict as conflict:
        mine, shown = _design_conflict(session, project_id, submitted, conflict)
        return _design_answer(request, session, project_id, settings, mine, conflict=shown)
    if not is_htmx(request):
        return redirect(request, f"/projects/{project_id}#design")
    found = review.review(session, project_id=project_id)
    merged = project.version > data.version + 1
    context = _review_context(
        found, values=_project_values(found), errors={}, saved=True, merged=merged
    )
    response = fragment(request, "_design.html", context)
    return _with_regions(request, response, regions.review_regions(found, base_context(request)))


# Each design field's text_digest as the form was read: a save applies only what changed.
BASE_FIELDS = tuple(f"base_{name}" for name in PROJECT_FIELDS)


def _project_values(found: review.Review) -> dict[str, Any]:
    return _design_values(projects.snapshot(found.project))


def _design_values(current: dict[str, Any]) -> dict[str, Any]:
    """The form as the design ``current`` reads: its texts, their digests and version."""
    texts = {name: str(current.get(name) or "") for name in PROJECT_FIELDS}
    digests = {f"base_{name}": projects.text_digest(text) for name, text in texts.items()}
    return {**texts, **digests, "version": current.get("version")}


def _design_answer(
    request: Request,
    session: Session,
    project_id: int,
    settings: Settings,
    submitted: dict[str, Any],
    *,
    errors: FieldErrors | None = None,
    conflict: dict[str, Any] | None = None,
) -> Response:
    """The form holding what was sent, with its errors (422) or the conflict (409): alone
    for htmx, in the whole review page for a form sent without JavaScript."""
    status = 409 if conflict else 422
    found = review.review(session, project_id=project_id)
    design = {"values": submitted, "errors": errors or {}, "conflict": conflict}
    if is_htmx(request):
        context = _review_context(found, **design)
        return fragment(request, "_design.html", context, status_code=status)
    return _whole_review(request, session, found, settings, status, **design)


def _whole_review(
    request: Request,
    session: Session,
    found: review.Review,
    settings: Settings,
    status: int,
    **forms: Any,
) -> HTMLResponse:
    """The review page answering a form sent without JavaScript, holding what was sent."""
    rest = _render_review_rest(request, found, settings, **forms)
    titles = {entry.item.id: entry.item.title for entry in found.items}
    html = _with_debates(session, found.project.id, rest, titles)
    return HTMLResponse(html, status_code=status)


def _design_conflict(
    session: Session, project_id: int, submitted: dict[str, str], exc: Conflict
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form to save again and what to show: their text of each field both changed;
    ours kept in it, theirs in the fields only they changed, based on their version."""
    current: dict[str, Any] | None = exc.extensions.get("current")
    if current is None:
        # A race lost at flush time: the transaction is spent; read their version afresh.
        session.rollback()
        current = projects.snapshot(projects.get_project(session, project_id))
    theirs = _design_values(current)
    ours = {
        name
        for name in PROJECT_FIELDS
        if projects.text_digest(submitted[name]) != submitted[f"base_{name}"]
    }
    clashes = exc.extensions.get("conflicts") or [
        name for name in ours if projects.text_digest(submitted[name]) != theirs[f"base_{name}"]
    ]
    mine = {**theirs, **{name: submitted[name] for name in ours}}
    changed = {name: theirs[name] for name in PROJECT_FIELDS if name in clashes}
    return mine, {"version": current.get("version"), "changed": changed}


@router.post("/projects/{project_id}/checklist", response_class=HTMLResponse)
async def add_checklist_item(
    request: Request,
    project_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
    user: WebWriter,
) -> Response:
    """Add a custom checklist item; its row appears on every open review page."""
    submitted = values(await request.form(), *ITEM_FIELDS)
    data, errors = parse(ChecklistItemCreate, submitted)
    if data is None:
        if not is_htmx(request):
            found = review.review(session, project_id=project_id)
            item_form = {"values": submitted, "errors": errors}
            return _whole_review(request, session, found, settings, 422, item_form=item_form)
        project = projects.get_project(session, project_id)
        context = {"project": project, "values": submitted, "errors": errors}
        return fragment(request, "_checklist_item_form.html", context, status_code=422)
    added = decisions.add_item(session, project_id=project_id, data=data, actor=user).item
    if not is_htmx(request):
        return redirect(request, f"/projects/{project_id}#item-{added.id}")
    found = review.review(session, project_id=project_id)
    # A fresh form, keeping the category: items are often added to one category in a row.
    context = {"project": found.project, "values": {"category": added.category}, "errors": {}}
    response = fragment(request, "_checklist_item_form.html", {**context, "added": added})
    # The new row is not on the page yet: its category's count, which lists it, brings it.
    live = regions.review_regions(found, base_context(request), item_states=False)
    return _with_regions(request, response, live)


@router.post("/items/{item_id}/decision", response_class=HTMLResponse)
async def record_decision(
    request: Request, item_id: PathId, session: SessionDep, user: WebWriter
) -> Response:
    """Record a decision revision (in a meeting when the form says so) and update the gate."""
    form = await request.form()
    submitted = values(form, *DECISION_FIELDS)
    meeting_id = _meeting_id(submitted["meeting_id"])
    data, errors = parse(DecisionWrite, _decision_data(submitted))
    if data is None:
        return _decision_answer(request, session, item_id, submitted, errors=errors)
    try:
        entry = _record(session, item_id, data, user, meeting_id)
    except Conflict as conflict:
        return _decision_conflict(request, session, item_id, submitted, conflict)
    if not is_htmx(request):
        # Without JavaScript the form is on the item's page, or the meeting's.
        project_id = entry.item.project_id
        back = f"/projects/{project_id}/meeting" if meeting_id else f"/items/{item_id}"
        return redirect(request, back)
    return _decision_recorded(request, session, entry, meeting_id)


def _record(
    session: Any, item_id: int, data: DecisionWrite, user: User, meeting_id: int | None
) -> ItemWithDecision:
    if meeting_id is None:
        return decisions.record_decision(session, item_id=item_id, data=data, actor=user)
    return meetings.record_decision(
        session, meeting_id=meeting_id, item_id=item_id, data=data, actor=user
    )


def _decision_data(submitted: dict[str, str]) -> dict[str, Any]:
    return {
        "status": submitted["status"] or None,
        "summary": submitted["summary"],
        "rationale": submitted["rationale"],
        "alternatives": lines(submitted["alternatives"]),
        # Checked by the schema: str.isdigit() took "²", which int() then refused (a 500).
        "version": submitted["version"].strip() or 0,
    }


_MEETING_ID = TypeAdapter(Id)


def _meeting_id(text: str) -> int | None:
    """The hidden field of a decision taken in a meeting, None outside one. Anything else
    is refused: past INTEGER it was a 500 on PostgreSQL, and a decision must not quietly
    lose its meeting."""
    if not text.strip():
        return None
    try:
        return _MEETING_ID.validate_python(text.strip())
    except ValidationError as exc:
        raise InvalidInput("The form's meeting is not a meeting id", field="meeting_id") from exc


def _decision_answer(
    request: Request,
    session: Session,
    item_id: int,
    submitted: dict[str, Any],
    *,
    errors: FieldErrors | None = None,
    conflict: dict[str, Any] | None = None,
) -> Response:
    """The form holding what was sent, with its errors (422) or the conflict (409): alone
    for htmx, in the item's whole page for a form sent without JavaScript."""
    status = 409 if conflict else 422
    sent = {"values": submitted, "errors": errors or {}, "conflict": conflict}
    if is_htmx(request):
        item = decisions.get_item(session, item_id)
        return fragment(request, "_decision_form.html", {"item": item, **sent}, status_code=status)
    detail = review.item_detail(session, item_id=item_id)
    context = {"project": detail.project, "entry": detail.entry, "history": detail.history}
    return fragment(request, "item.html", {**context, "decision_sent": sent}, status_code=status)


def _decision_conflict(
    request: Request, session: Session, item_id: int, submitted: dict[str, str], exc: Conflict
) -> Response:
    """Someone decided first: show their decision, keep our text, base the retry on theirs."""
    theirs = decisions.current_decision(session, item_id)
    mine = {**submitted, "version": theirs.revision if theirs else 0}
    conflict = {"detail": exc.detail, "theirs": theirs}
    return _decision_answer(request, session, item_id, mine, conflict=conflict)


def _decision_recorded(
    request: Request, session: Any, entry: ItemWithDecision, meeting_id: int | None
) -> Response:
    found = review.review(session, project_id=entry.item.project_id)
    context = {
        "item": entry.item,
        "values": decision_values(entry, meeting_id),
        "errors": {},
        "saved": entry.decision.revision if entry.decision else None,
    }
    response = fragment(request, "_decision_form.html", context)
    if meeting_id is None:
        page_context = base_context(request)
        live_regions = regions.review_regions(found, page_context, item_id=entry.item.id)
        detail = review.item_detail(session, item_id=entry.item.id)
        live_regions.append(regions.item_record(detail, page_context))
    else:
        meeting = meetings.get_meeting(session, meeting_id)
        live_regions = regions.meeting_regions(
            session, meeting, found, base_context(request), form=False
        )
    return _with_regions(request, response, live_regions)


def _with_regions(request: Request, response: Response, live: regions.Regions) -> Response:
    """Append out-of-band swaps so the page updates without waiting for the live stream."""
    body = bytes(response.body) + str(regions.out_of_band(live)).encode()
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return HTMLResponse(body, status_code=response.status_code, headers=headers)
