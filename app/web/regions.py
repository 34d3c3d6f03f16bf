"""Parts of a page that change live. Each region is an element id and its inner HTML;
the same region goes out as an out-of-band swap in a form's response and as a
server-sent event named after the id, so whoever changed it and everyone else
see the same thing."""

from typing import Any

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from app.models import Meeting
from app.services import debate_overview, meetings
from app.services.review import ItemDetail, Review
from app.web.templating import render_text, templates

Regions = list[tuple[str, str]]


def review_regions(
    review: Review,
    context: dict[str, Any],
    *,
    design: bool = False,
    item_id: int | None = None,
    item_states: bool = True,
) -> Regions:
    """The gate, each category's count and each item's state (and a design notice).

    With ``item_id``, only that item's state: a decision changes no other item's row.
    Without ``item_states``, none: an item just added changed no row, and has none yet.
    """
    base = {**context, "review": review, "project": review.project, "gate": review.gate}
    regions: Regions = [("gate-state", render_text("_gate.html", base))]
    for group in review.categories:
        regions.append(
            (f"cat-{group.key}-state", render_text("_category_state.html", {"group": group}))
        )
    state = templates.env.get_template("_item_state.html")
    for entry in review.items:
        if item_states and (item_id is None or entry.item.id == item_id):
            html = state.render({**base, "entry": entry})
            regions.append((f"item-{entry.item.id}-state", html))
    regions.append(("meeting-banner", render_text("_meeting_banner.html", base)))
    if design:
        regions.append(("design-notice", render_text("_design_notice.html", base)))
    return regions


def meeting_regions(
    session: Session, meeting: Meeting, review: Review, context: dict[str, Any], *, form: bool
) -> Regions:
    """Attendees, agenda, the current item with its votes, the gate (and the decision form)."""
    base = meeting_context(session, meeting, review, context)
    names = ["attendees", "agenda", "stage", "gate", "replies"] + (["form"] if form else [])
    return [(f"meeting-{name}", render_text(f"_meeting_{name}.html", base)) for name in names]


def meeting_context(
    session: Session, meeting: Meeting, review: Review, context: dict[str, Any]
) -> dict[str, Any]:
    current = review.entry(meeting.current_item_id) if meeting.current_item_id else None
    user = context.get("user")
    people = meetings.attendees(session, meeting)
    ids = [entry.item.id for entry in review.items]
    position = ids.index(current.item.id) if current else -1
    return {
        "position": position + 1,
        "previous_id": ids[position - 1] if position > 0 else None,
        "next_id": ids[position + 1] if 0 <= position < len(ids) - 1 else None,
        **context,
        "meeting": meeting,
        "review": review,
        "project": review.project,
        "gate": review.gate,
        "current": current,
        "attendees": people,
        "attending": user is not None and any(a.user_id == user.id for a in people),
        "presenting": user is not None and meeting.presenter_id == user.id,
        "votes": meetings.votes(session, meeting, item_id=current.item.id) if current else [],
        "replies": debate_overview.latest_replies(session, project_id=meeting.project_id),
    }


def meeting_replies(session: Session, project_id: int, context: dict[str, Any]) -> tuple[str, str]:
    """The meeting's list of the project's latest model replies, alone (a model is writing)."""
    replies = debate_overview.latest_replies(session, project_id=project_id)
    return (
        "meeting-replies",
        render_text("_meeting_replies.html", {**context, "replies": replies}),
    )


def item_record(detail: ItemDetail, context: dict[str, Any]) -> tuple[str, str]:
    """An opened item's decision and revision history, after a revision was recorded."""
    record_context = {**context, "project": detail.project, "entry": detail.entry}
    html = render_text("_item_record.html", {**record_context, "history": detail.history})
    return (f"item-{detail.entry.item.id}-record", html)


def out_of_band(regions: Regions) -> Markup:
    """Regions as htmx out-of-band swaps, appended to a response."""
    parts = [
        Markup('<div id="{}" hx-swap-oob="innerHTML">{}</div>').format(escape(rid), Markup(html))  # noqa: S704 (rendered by autoescaping templates)
        for rid, html in regions
    ]
    return Markup("").join(parts)
