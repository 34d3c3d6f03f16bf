"""Markdown minutes of a meeting: items covered, decisions, votes and open items."""

from collections import Counter

from sqlalchemy.orm import Session

from app.models import Decision, Meeting, User
from app.models.enums import Category, Vote
from app.services import meetings
from app.services.catalog import CATEGORY_LABELS
from app.services.decisions import ItemWithDecision, checklist
from app.services.projects import get_project

STATUS_LABELS = {
    "decided": "decided",
    "accepted_risk": "accepted risk",
    "not_applicable": "not applicable",
}


def render(session: Session, meeting: Meeting) -> str:
    """The minutes as Markdown, from the meeting's record at the moment it ends."""
    project = get_project(session, meeting.project_id)
    items = {entry.item.id: entry for entry in checklist(session, project)}
    lines = [f"# Minutes: {_inline(project.name)}", "", *_header(session, meeting), ""]
    lines += _items_covered(meeting, items)
    lines += _decisions(session, meeting, items)
    lines += _votes(session, meeting, items)
    lines += _open_items(items)
    return "\n".join(lines).rstrip() + "\n"


def _inline(text: str) -> str:
    """One line of user text: Markdown lists break on newlines."""
    return " ".join(text.split())


def _label(entry: ItemWithDecision) -> str:
    category = CATEGORY_LABELS[Category(entry.item.category)]
    return f"{category}: {_inline(entry.item.title)}"


def _header(session: Session, meeting: Meeting) -> list[str]:
    presenter = session.get(User, meeting.presenter_id) if meeting.presenter_id else None
    ended = meeting.ended_at.strftime("%Y-%m-%d %H:%M UTC") if meeting.ended_at else "running"
    people = [a.name for a in meetings.attendees(session, meeting)]
    return [
        f"- Started: {meeting.started_at:%Y-%m-%d %H:%M UTC}",
        f"- Ended: {ended}",
        f"- Presenter: {_inline(presenter.name) if presenter else 'nobody'}",
        f"- Attendees: {', '.join(_inline(p) for p in people) or 'nobody'}",
    ]


def _items_covered(meeting: Meeting, items: dict[int, ItemWithDecision]) -> list[str]:
    lines = ["## Items covered", ""]
    covered = [items[i] for i in meeting.covered_item_ids if i in items]
    for entry in covered:
        state = entry.state.replace("_", " ")
        summary = f": {_inline(entry.decision.summary)}" if entry.decision else ""
        lines.append(f"- {_label(entry)} ({state}){summary}")
    return [*lines, *([] if covered else ["- none"]), ""]


def _decisions(session: Session, meeting: Meeting, items: dict[int, ItemWithDecision]) -> list[str]:
    lines = ["## Decisions", ""]
    recorded = meetings.decisions_in(session, meeting)
    for decision in recorded:
        lines += _decision_lines(session, decision, items)
    return [*lines, *([] if recorded else ["- none recorded in this meeting"]), ""]


def _decision_lines(
    session: Session, decision: Decision, items: dict[int, ItemWithDecision]
) -> list[str]:
    entry = items.get(decision.item_id)
    label = _label(entry) if entry else f"Item {decision.item_id}"
    author = session.get(User, decision.decided_by_id) if decision.decided_by_id else None
    status = STATUS_LABELS.get(decision.status, decision.status)
    lines = [
        f"- **{label}**, revision {decision.revision}, {status}"
        f" by {_inline(author.name) if author else 'unknown'}",
        f"  - Summary: {_inline(decision.summary)}",
        f"  - Rationale: {_inline(decision.rationale)}",
    ]
    if decision.alternatives:
        rejected = "; ".join(_inline(a) for a in decision.alternatives)
        lines.append(f"  - Alternatives considered: {rejected}")
    present = ", ".join(_inline(str(a.get("name", ""))) for a in decision.attendees)
    lines.append(f"  - In the room: {present or 'nobody recorded'}")
    return lines


def _votes(session: Session, meeting: Meeting, items: dict[int, ItemWithDecision]) -> list[str]:
    lines = ["## Votes", ""]
    grouped = meetings.votes_by_item(session, meeting)
    for item_id, casts in grouped.items():
        entry = items.get(item_id)
        label = _label(entry) if entry else f"Item {item_id}"
        counts = Counter(cast.vote for cast in casts)
        tally = ", ".join(f"{vote.value} {counts[vote]}" for vote in Vote)
        voters = "; ".join(
            f"{_inline(c.name)}: {c.vote.value} (revision {c.decision_revision})" for c in casts
        )
        lines.append(f"- {label}: {tally} ({voters})")
    return [*lines, *([] if grouped else ["- no votes"]), ""]


def _open_items(items: dict[int, ItemWithDecision]) -> list[str]:
    lines = ["## Open items", ""]
    still_open = [entry for entry in items.values() if entry.state in {"open", "stale"}]
    for entry in still_open:
        reason = "stale since the design changed" if entry.stale else "no decision"
        lines.append(f"- {_label(entry)} ({reason})")
    return [*lines, *([] if still_open else ["- none: every item has a current decision"]), ""]
