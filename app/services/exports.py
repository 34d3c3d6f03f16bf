"""Exports of the reviewed design, all built from the one design pack: the design pack as
Markdown, a spec-kit spec.md / plan.md pair, MADR decision records, a print-friendly review
report and a CSV of the checklist."""

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Decision, Meeting, MeetingAttendee, User
from app.models.enums import Category
from app.services import design_pack, generation
from app.services.catalog import CATEGORY_CONCERNS, CATEGORY_LABELS
from app.services.design_pack import DesignPack, PackItem
from app.services.projects import get_project

EXPORT_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "exports"
MARKDOWN = "text/markdown; charset=utf-8"
STATUS_LABELS = {
    "decided": "decided",
    "accepted_risk": "risk accepted",
    "not_applicable": "not applicable",
}
STATE_LABELS = {**STATUS_LABELS, "open": "no decision", "stale": "stale"}
MADR_STATUS = {
    "decided": "accepted",
    "accepted_risk": "accepted (risk accepted)",
    "not_applicable": "accepted (not applicable)",
}
# A spreadsheet runs a cell that starts like a formula; such cells get a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportFile:
    filename: str
    media_type: str
    content: bytes


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(EXPORT_TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # JSON strings are YAML strings: front matter survives colons and quotes in names.
    environment.filters["yaml_string"] = lambda text: json.dumps(str(text), ensure_ascii=False)
    environment.globals.update(
        who=who,
        attendees=attendee_names,
        status_label=STATUS_LABELS,
        state_label=STATE_LABELS,
        category_label={c.value: label for c, label in CATEGORY_LABELS.items()},
    )
    return environment


def _render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)


def who(user: User | None) -> str:
    return f"{user.name} <{user.email}>" if user is not None else "unknown"


def attendee_names(decision: Decision) -> str:
    """Who was in the room when a meeting recorded the decision, as one line."""
    names = []
    for attendee in decision.attendees:
        if isinstance(attendee, dict):
            names.append(str(attendee.get("name") or attendee.get("email") or attendee))
        else:
            names.append(str(attendee))
    return ", ".join(names)


def slugify(text: str, fallback: str = "design") -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-")
    return slug or fallback


def _pack(session: Session, project_id: int) -> DesignPack:
    return design_pack.build(session, get_project(session, project_id))


def design_pack_file(session: Session, *, project_id: int) -> ExportFile:
    """The design pack: the brief a coding agent can take as it is."""
    pack = _pack(session, project_id)
    name = f"{slugify(pack.project.name)}-design-pack.md"
    return ExportFile(name, MARKDOWN, design_pack.markdown(pack).encode())


def spec_kit_zip(session: Session, *, project_id: int) -> ExportFile:
    """specs/001-NAME/spec.md and plan.md, the layout spec-driven tools read."""
    pack = _pack(session, project_id)
    folder = f"specs/001-{slugify(pack.project.name)}"
    files = {
        f"{folder}/spec.md": _render("spec.md", pack=pack, project=pack.project),
        f"{folder}/plan.md": _render("plan.md", pack=pack, project=pack.project),
    }
    return ExportFile(
        f"{slugify(pack.project.name)}-spec-kit.zip", "application/zip", _zip(files, pack.built_at)
    )


def decision_record_files(pack: DesignPack) -> dict[str, str]:
    """One MADR file per current decision, NNNN-slug.md, numbered by checklist position."""
    return {
        f"{entry.number:04d}-{slugify(entry.item.title, f'item-{entry.item.id}')}.md": (
            _decision_record(pack, entry)
        )
        for entry in pack.items
        if entry.decision is not None
    }


def _decision_record(pack: DesignPack, entry: PackItem) -> str:
    assert entry.decision is not None
    category = Category(entry.item.category)
    status = MADR_STATUS[entry.decision.status]
    if entry.entry.stale:
        status += ", stale: re-confirm"
    return _render(
        "adr.md",
        project=pack.project,
        item=entry.item,
        decision=entry.decision,
        superseded=entry.superseded,
        tests=entry.tests,
        record={"status": status, "stale": entry.entry.stale},
        section_label=CATEGORY_LABELS[category],
        concern=CATEGORY_CONCERNS[category],
    )


def adr_zip(session: Session, *, project_id: int) -> ExportFile:
    pack = _pack(session, project_id)
    files = decision_record_files(pack)
    return ExportFile(
        f"{slugify(pack.project.name)}-decisions.zip", "application/zip", _zip(files, pack.built_at)
    )


def _zip(files: dict[str, str], when: datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, stamp), text.encode())
    return buffer.getvalue()


@dataclass(frozen=True)
class MeetingSummary:
    started_at: datetime
    ended_at: datetime | None
    presenter: str
    attendees: list[str]
    minutes: str | None


def _meetings(session: Session, project_id: int) -> list[MeetingSummary]:
    rows = list(
        session.execute(
            select(Meeting, User)
            .outerjoin(User, User.id == Meeting.presenter_id)
            .where(Meeting.project_id == project_id)
            .order_by(Meeting.id)
        )
    )
    people = _attendees_by_meeting(session, [meeting.id for meeting, _presenter in rows])
    return [
        MeetingSummary(
            meeting.started_at,
            meeting.ended_at,
            who(presenter) if presenter is not None else "nobody",
            people.get(meeting.id, []),
            meeting.minutes,
        )
        for meeting, presenter in rows
    ]


def _attendees_by_meeting(session: Session, meeting_ids: list[int]) -> dict[int, list[str]]:
    rows = session.execute(
        select(MeetingAttendee.meeting_id, User)
        .join(User, User.id == MeetingAttendee.user_id)
        .where(MeetingAttendee.meeting_id.in_(meeting_ids))
        .order_by(MeetingAttendee.id)
    )
    found: dict[int, list[str]] = {}
    for meeting_id, user in rows:
        found.setdefault(meeting_id, []).append(who(user))
    return found


def review_report(session: Session, *, project_id: int) -> ExportFile:
    """A print-friendly HTML report for people who were not in the meeting."""
    pack = _pack(session, project_id)
    html = _render(
        "report.html",
        pack=pack,
        project=pack.project,
        meetings=_meetings(session, project_id),
        generations=generation.generation_views(session, project_id=project_id),
    )
    name = f"{slugify(pack.project.name)}-review.html"
    return ExportFile(name, "text/html; charset=utf-8", html.encode())


CSV_COLUMNS = (
    "number",
    "category",
    "title",
    "question",
    "state",
    "status",
    "revision",
    "summary",
    "rationale",
    "rejected_alternatives",
    "decided_by",
    "decided_at",
    "tests",
)


def checklist_csv(session: Session, *, project_id: int) -> ExportFile:
    """The checklist with each item's current decision, one row per item."""
    pack = _pack(session, project_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_safe_row(_csv_row(entry)) for entry in pack.items)
    name = f"{slugify(pack.project.name)}-checklist.csv"
    return ExportFile(name, "text/csv; charset=utf-8", buffer.getvalue().encode())


def _csv_row(entry: PackItem) -> list[object]:
    decision = entry.decision
    row: list[object] = [
        entry.number,
        entry.item.category,
        entry.item.title,
        entry.item.question,
        entry.entry.state,
    ]
    if decision is None:
        return [*row, "", "", "", "", "", "", "", entry.tests]
    return [
        *row,
        decision.status,
        decision.revision,
        decision.summary,
        decision.rationale,
        " | ".join(decision.alternatives),
        who(decision.decided_by),
        decision.decided_at.isoformat(),
        entry.tests,
    ]


def _safe_row(row: Iterable[object]) -> list[object]:
    return [
        f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell
        for cell in row
    ]
