"""Live meeting mode: the presenter steps through the checklist, everyone follows and votes."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.responses import Response

from app.api.params import FormId, PathId
from app.deps import SessionDep
from app.errors import InvalidInput, NotFound
from app.models import Meeting
from app.models.enums import Vote
from app.services import meetings, review
from app.web import regions
from app.web.deps import WebUser, WebWriter, check_csrf, require_setup_done
from app.web.errors import redirect
from app.web.templating import base_context, is_htmx, page

router = APIRouter(dependencies=[Depends(require_setup_done), Depends(check_csrf)])


def _meeting_page_context(request: Request, session: Any, meeting: Meeting) -> dict[str, Any]:
    found = review.review(session, project_id=meeting.project_id)
    return regions.meeting_context(session, meeting, found, base_context(request))


@router.get("/projects/{project_id}/meeting", response_class=HTMLResponse)
def meeting_page(
    request: Request, project_id: PathId, session: SessionDep, user: WebUser
) -> Response:
    """The project's live meeting, or a way to start one and the minutes of past ones."""
    meeting = meetings.active_meeting(session, project_id=project_id)
    if meeting is None:
        found = review.review(session, project_id=project_id)
        past = meetings.past_meetings(session, project_id=project_id)
        context = {"project": found.project, "gate": found.gate, "past": past}
        return page(request, "meeting_none.html", context)
    return page(request, "meeting.html", _meeting_page_context(request, session, meeting))


@router.post("/projects/{project_id}/meeting")
def start_meeting(
    request: Request, project_id: PathId, session: SessionDep, user: WebWriter
) -> Response:
    """Start a meeting with you presenting."""
    meetings.start_meeting(session, project_id=project_id, actor=user)
    return redirect(request, f"/projects/{project_id}/meeting")


@router.post("/meetings/{meeting_id}/join")
def join_meeting(
    request: Request, meeting_id: PathId, session: SessionDep, user: WebWriter
) -> Response:
    """Join the meeting as an attendee."""
    meeting = meetings.join(session, meeting_id=meeting_id, actor=user)
    return redirect(request, f"/projects/{meeting.project_id}/meeting")


@router.post("/meetings/{meeting_id}/current-item", response_class=HTMLResponse)
def set_current_item(
    request: Request,
    meeting_id: PathId,
    session: SessionDep,
    user: WebWriter,
    item_id: FormId,
) -> Response:
    """Show an item on every attendee's screen (presenter only)."""
    meeting = meetings.set_current_item(session, meeting_id=meeting_id, item_id=item_id, actor=user)
    return _regions_response(request, session, meeting, form=True)


@router.post("/meetings/{meeting_id}/votes", response_class=HTMLResponse)
def cast_vote(
    request: Request,
    meeting_id: PathId,
    session: SessionDep,
    user: WebWriter,
    item_id: FormId,
    vote: Annotated[str, Form()],
) -> Response:
    """Vote on the current item's proposed decision."""
    try:
        chosen = Vote(vote)
    except ValueError as exc:
        raise InvalidInput("Vote agree, disagree or abstain", field="vote") from exc
    meetings.cast_vote(session, meeting_id=meeting_id, item_id=item_id, vote=chosen, actor=user)
    meeting = meetings.get_meeting(session, meeting_id)
    return _regions_response(request, session, meeting, form=False)


def _regions_response(request: Request, session: Any, meeting: Meeting, *, form: bool) -> Response:
    """The changed parts for htmx; a form sent without JavaScript reloads the meeting page."""
    if not is_htmx(request):
        return redirect(request, f"/projects/{meeting.project_id}/meeting")
    found = review.review(session, project_id=meeting.project_id)
    parts = regions.meeting_regions(session, meeting, found, base_context(request), form=form)
    return HTMLResponse(str(regions.out_of_band(parts)))


@router.post("/meetings/{meeting_id}/end")
def end_meeting(
    request: Request, meeting_id: PathId, session: SessionDep, user: WebWriter
) -> Response:
    """End the meeting and show its minutes."""
    meetings.end_meeting(session, meeting_id=meeting_id, actor=user)
    return redirect(request, f"/meetings/{meeting_id}")


@router.get("/meetings/{meeting_id}", response_class=HTMLResponse)
def meeting_minutes(
    request: Request, meeting_id: PathId, session: SessionDep, user: WebUser
) -> Response:
    """A meeting's minutes (or the live view while it runs)."""
    meeting = meetings.get_meeting(session, meeting_id)
    if meeting.ended_at is None:
        return redirect(request, f"/projects/{meeting.project_id}/meeting")
    found = review.review(session, project_id=meeting.project_id)
    return page(request, "minutes.html", {"meeting": meeting, "project": found.project})


@router.get("/meetings/{meeting_id}/minutes.md")
def minutes_markdown(meeting_id: PathId, session: SessionDep, user: WebUser) -> Response:
    """The minutes as a Markdown file."""
    meeting = meetings.get_meeting(session, meeting_id)
    if meeting.minutes is None:
        raise NotFound("This meeting has no minutes yet: it is still running")
    headers = {"Content-Disposition": f'attachment; filename="meeting-{meeting.id}-minutes.md"'}
    return PlainTextResponse(meeting.minutes, media_type="text/markdown", headers=headers)
