"""Debates in the browser: start a thread, read it with its prompts, post (or push back)."""

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.api.params import PathId
from app.config import Settings
from app.deps import DbDep, ModelCallsDep, SessionDep, SettingsDep
from app.errors import Conflict, InvalidInput
from app.models.enums import ThreadMode
from app.schemas.debate import MessageCreate, ThreadCreate
from app.services import debate_overview, debates, replies, review
from app.services.debate_overview import ThreadPage
from app.web.deps import WebUser, WebWriter, check_csrf, require_setup_done
from app.web.errors import redirect
from app.web.forms import FieldErrors, parse
from app.web.templating import fragment, is_htmx, page, render_text

router = APIRouter(dependencies=[Depends(require_setup_done), Depends(check_csrf)])

# Sent as the team's first message when the form leaves it empty; shown in the thread as such.
OPENING = {
    ThreadMode.BLIND: "Propose at least two independent designs for this problem, "
    "with their trade-offs and failure modes.",
    ThreadMode.FAILURE_WALK: "Walk the failure modes of this item against our design: "
    "what breaks, how we would notice, and what protects us.",
    ThreadMode.CHALLENGE: "Attack our decision on this item: where is it weakest, and what "
    "would make it fail in production?",
    ThreadMode.OPEN: "What worries you most about this design?",
}


def _form_context(
    found: review.Review, settings: Settings, values: dict[str, Any], errors: FieldErrors
) -> dict[str, Any]:
    return {
        "project": found.project,
        "items": found.items,
        "selectable_models": settings.selectable_models,
        "values": values,
        "errors": errors,
    }


def _form_values(mode: str, item_id: int | None, settings: Settings) -> dict[str, Any]:
    chosen = ThreadMode(mode) if mode in {m.value for m in ThreadMode} else ThreadMode.BLIND
    return {
        "mode": chosen.value,
        "checklist_item_id": str(item_id or ""),
        "models": settings.debate_models,
        "opening": OPENING[chosen],
    }


@router.get("/projects/{project_id}/threads/new", response_class=HTMLResponse)
def new_thread_form(
    request: Request,
    project_id: PathId,
    session: SessionDep,
    user: WebWriter,
    settings: SettingsDep,
    mode: str = "",
    item_id: int | None = None,
) -> Response:
    """The form that starts a debate, prefilled for a mode and a checklist item."""
    found = review.review(session, project_id=project_id)
    context = _form_context(found, settings, _form_values(mode, item_id, settings), {})
    context["disclosure"] = debate_overview.disclosure(session, project_id=project_id)
    return page(request, "thread_new.html", context)


@router.post("/projects/{project_id}/threads", response_class=HTMLResponse)
def start_thread(
    request: Request,
    project_id: PathId,
    session: SessionDep,
    user: WebWriter,
    settings: SettingsDep,
    db: DbDep,
    calls: ModelCallsDep,
    background: BackgroundTasks,
    mode: Annotated[str, Form()] = "",
    checklist_item_id: Annotated[str, Form()] = "",
    models: Annotated[list[str] | None, Form()] = None,
    opening: Annotated[str, Form()] = "",
) -> Response:
    """Start a debate with its opening message; the models answer while the thread page shows it."""
    submitted = {
        "mode": mode,
        "checklist_item_id": checklist_item_id,
        "models": models or [],
        "opening": opening,
    }
    data, errors = parse(ThreadCreate, _thread_data(submitted))
    written, opening_errors = _opening(opening)
    if opening_errors:
        errors = {**errors, "opening": opening_errors["content"]}
    if data is None or errors:
        return _thread_form(request, session, settings, project_id, submitted, errors, 422)
    first = written or MessageCreate(content=OPENING[data.mode])
    try:
        posted = debates.start_thread(
            session,
            project_id=project_id,
            data=data,
            opening=first,
            actor=user,
            default_models=settings.debate_models,
            allowed_models=settings.selectable_models,
        )
    except (InvalidInput, Conflict) as refused:
        session.rollback()
        errors = {"form": refused.detail}
        status = refused.status_code
        return _thread_form(request, session, settings, project_id, submitted, errors, status)
    background.add_task(replies.run_replies, db, calls, [reply.id for reply in posted.replies])
    return redirect(request, f"/threads/{posted.user_message.thread_id}")


def _opening(text: str) -> tuple[MessageCreate | None, FieldErrors]:
    """The opening message as written, checked as the API checks a message (a NUL or a text
    past its length was a 500 here); nothing written means the mode's own request."""
    if not text.strip():
        return None, {}
    return parse(MessageCreate, {"content": text})


def _thread_data(submitted: dict[str, Any]) -> dict[str, Any]:
    item = submitted["checklist_item_id"].strip()
    return {
        "mode": submitted["mode"] or None,
        "checklist_item_id": item or None,
        "models": submitted["models"] or None,
    }


def _thread_form(
    request: Request,
    session: Session,
    settings: Settings,
    project_id: int,
    submitted: dict[str, Any],
    errors: FieldErrors,
    status: int,
) -> Response:
    found = review.review(session, project_id=project_id)
    context = _form_context(found, settings, submitted, errors)
    context["disclosure"] = debate_overview.disclosure(session, project_id=project_id)
    return page(
        request, "thread_new.html", context, partial="_thread_form.html", status_code=status
    )


def turns_html(found: ThreadPage) -> str:
    """The rendered turns (autoescaped; model text only as sanitised Markdown)."""
    return render_text("_thread_turns.html", {"turns": found.turns, "authors": found.authors})


def digest(html: str) -> str:
    """Names what a page shows, so its live stream can skip sending the same again."""
    return hashlib.sha256(html.encode()).hexdigest()[:20]


def _thread_context(
    session: Session, thread_id: int, values: dict[str, Any], errors: FieldErrors
) -> dict[str, Any]:
    found = debate_overview.thread_page(session, thread_id=thread_id)
    shown = turns_html(found)
    return {
        "found": found,
        "thread": found.view.thread,
        "project": found.project,
        # Rendered by autoescaping templates just above; model text in it is sanitised HTML.
        "turns": Markup(shown),  # noqa: S704
        "shown": digest(shown),
        "values": values,
        "errors": errors,
    }


@router.get("/threads/{thread_id}", response_class=HTMLResponse)
def thread_page(
    request: Request, thread_id: PathId, session: SessionDep, user: WebUser
) -> Response:
    """A debate: each turn with the models' replies side by side, flags, costs and prompts."""
    return page(request, "thread.html", _thread_context(session, thread_id, {}, {}))


@router.post("/threads/{thread_id}/messages", response_class=HTMLResponse)
def post_message(
    request: Request,
    thread_id: PathId,
    session: SessionDep,
    user: WebWriter,
    settings: SettingsDep,
    db: DbDep,
    calls: ModelCallsDep,
    background: BackgroundTasks,
    content: Annotated[str, Form()] = "",
    pushback: Annotated[bool, Form()] = False,
) -> Response:
    """Say something in the debate (or push back); the replies stream into the thread page."""
    submitted = {"content": content, "pushback": pushback}
    data, errors = parse(MessageCreate, submitted)
    if data is None:
        context = _thread_context(session, thread_id, submitted, errors)
        return page(request, "thread.html", context, partial="_message_form.html", status_code=422)
    posted = debates.post_message(
        session,
        thread_id=thread_id,
        data=data,
        actor=user,
        default_models=settings.debate_models,
    )
    background.add_task(replies.run_replies, db, calls, [reply.id for reply in posted.replies])
    if not is_htmx(request):
        return redirect(request, f"/threads/{thread_id}")
    context = {"thread": debates.get_thread(session, thread_id), "values": {}, "errors": {}}
    return fragment(request, "_message_form.html", {**context, "sent": True})
