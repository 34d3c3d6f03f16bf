"""Backup and restore: projects with everything recorded about them, in one versioned JSON
document, and back. Ids are not carried over: the document numbers its rows itself and names
users by email, so a backup can be restored into a database that already has data.

Users that the target lacks are created without a password (none is exported): they can be
given an API token with ``designgate token create``. Audit snapshots (``before``/``after``) are
kept verbatim, so ids inside them still refer to the database they were recorded in.
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, insert, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db import utcnow
from app.errors import Conflict, InvalidInput, error_message, validation_errors
from app.models import (
    AuditEvent,
    ChecklistItem,
    ChecklistTemplate,
    Decision,
    Draft,
    DraftProposal,
    Generation,
    Meeting,
    MeetingAttendee,
    MeetingVote,
    Message,
    Project,
    Thread,
    User,
)
from app.schemas.backup import (
    BACKUP_FORMAT,
    BACKUP_VERSION,
    AttendeeRecord,
    AuditRecord,
    BackupDocument,
    BasisRecord,
    DecisionRecord,
    DraftRecord,
    GenerationRecord,
    ImportSummary,
    ItemRecord,
    MeetingRecord,
    MessageRecord,
    ProjectRecord,
    ProposalRecord,
    TemplateRecord,
    ThreadRecord,
    UserRecord,
    VoteRecord,
)
from app.schemas.common import MAX_JSON_DEPTH, nests_deeper_than
from app.schemas.template import TemplateSpec, stored_template
from app.services import audit
from app.services.projects import get_project
from app.services.templates import TemplateCatalog

# An Argon2 verifier refuses this, so an imported user cannot sign in with a password.
NO_PASSWORD = "!"  # noqa: S105 (a marker, not a password)
# Audit events name their entity by type; these types are carried by a backup.
AUDITED_KINDS = {
    "project": "project",
    "checklist_item": "item",
    "decision": "decision",
    "meeting": "meeting",
    "thread": "thread",
    "message": "message",
    "generation": "generation",
    "draft": "draft",
}


class _Refs:
    """Document-local numbers for database rows, per kind, in the order they are met."""

    def __init__(self, users: dict[int, User]) -> None:
        self._numbers: dict[str, dict[int, int]] = {}
        self._users = users
        self.emails_used: set[str] = set()
        self._template_keys: dict[int, str] | None = None

    def assign(self, kind: str, rows: Iterable[Any]) -> None:
        numbers = self._numbers.setdefault(kind, {})
        for row in rows:
            numbers[row.id] = len(numbers) + 1

    def of(self, kind: str, row_id: int | None) -> int | None:
        return None if row_id is None else self._numbers.get(kind, {}).get(row_id)

    def email(self, user_id: int | None) -> str | None:
        user = self._users.get(user_id) if user_id is not None else None
        if user is None:
            return None
        self.emails_used.add(user.email)
        return user.email

    def template_key(self, session: Session, template_id: int) -> str | None:
        """A template's key: every template's is read at the first ask, in one statement
        (one read per audit event cost a statement each, the session keeping no row)."""
        if self._template_keys is None:
            rows = session.execute(select(ChecklistTemplate.id, ChecklistTemplate.key))
            self._template_keys = dict(rows.all())
        return self._template_keys.get(template_id)


class _Contents:
    """Every row the backed-up projects hold (all projects' when ``project_id`` is None),
    each table read once for all of them and grouped by project, attendees and votes by
    meeting: read per project and per meeting, a backup cost a statement for each."""

    def __init__(self, session: Session, project_id: int | None) -> None:
        def in_scope(column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
            # Every row that belongs to a project, or to the one backed up.
            return column.is_not(None) if project_id is None else column == project_id

        item_project = in_scope(ChecklistItem.project_id)
        meeting_project = in_scope(Meeting.project_id)
        thread_project = in_scope(Thread.project_id)
        self.items = _grouped(session, ChecklistItem, ChecklistItem.project_id, item_project)
        self.decisions = _grouped(
            session, Decision, ChecklistItem.project_id, item_project, via=ChecklistItem
        )
        self.meetings = _grouped(session, Meeting, Meeting.project_id, meeting_project)
        self.attendees = _grouped(
            session, MeetingAttendee, MeetingAttendee.meeting_id, meeting_project, via=Meeting
        )
        self.votes = _grouped(
            session, MeetingVote, MeetingVote.meeting_id, meeting_project, via=Meeting
        )
        self.threads = _grouped(session, Thread, Thread.project_id, thread_project)
        self.messages = _grouped(session, Message, Thread.project_id, thread_project, via=Thread)
        self.generations = _grouped(
            session, Generation, Generation.project_id, in_scope(Generation.project_id)
        )
        # Events of no project are the whole-instance backup's own (_add_instance_records).
        self.events = _grouped(
            session, AuditEvent, AuditEvent.project_id, in_scope(AuditEvent.project_id)
        )


def _grouped(
    session: Session,
    model: type[Any],
    key: InstrumentedAttribute[Any],
    where: ColumnElement[bool],
    *,
    via: type[Any] | None = None,
) -> dict[int, list[Any]]:
    """The rows of ``model`` that ``where`` keeps, by ``key``, each group in id order;
    ``via`` is the table (joined on its foreign key) that ``key`` and ``where`` name."""
    stmt: Select[Any] = select(model, key)
    if via is not None:
        stmt = stmt.join(via)
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row, group in session.execute(stmt.where(where).order_by(model.id)):
        grouped[group].append(row)
    return grouped


def _by(rows: Iterable[Any], key: str) -> dict[int, list[Any]]:
    """Rows already read, grouped by the column ``key``, keeping their order."""
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, key)].append(row)
    return grouped


def export_backup(session: Session, *, project_id: int | None = None) -> BackupDocument:
    """One project (with the users it references), or everything when ``project_id`` is None."""
    users = {u.id: u for u in session.scalars(select(User).order_by(User.id))}
    refs = _Refs(users)
    projects = [get_project(session, project_id)] if project_id else _all_projects(session)
    refs.assign("project", projects)
    contents = _Contents(session, project_id)
    records = [_project_record(session, project, contents, refs) for project in projects]
    document = BackupDocument(
        format=BACKUP_FORMAT,
        version=BACKUP_VERSION,
        exported_at=utcnow(),
        scope="project" if project_id else "all",
        users=[],
        projects=records,
    )
    if project_id is None:
        _add_instance_records(session, document, refs)
    chosen = users.values() if project_id is None else _used(users.values(), refs)
    document.users = [_user_record(user) for user in chosen]
    return document


def _all_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def _used(users: Iterable[User], refs: _Refs) -> list[User]:
    return [user for user in users if user.email in refs.emails_used]


def _user_record(user: User) -> UserRecord:
    return UserRecord(
        email=user.email,
        name=user.name,
        role=user.role,
        is_active=user.is_active,
        created_at=user.created_at,
    )


def _rows(session: Session, model: type[Any], *where: Any) -> list[Any]:
    return list(session.scalars(select(model).where(*where).order_by(model.id)))


# The plain columns each record carries under the same name; ids and links are mapped apart.
# tests/after_gate/test_backup.py checks that every column of every table is accounted for.
COLUMNS: dict[str, tuple[str, ...]] = {
    "projects": (
        "name",
        "problem",
        "architecture",
        "data_model",
        "constraints",
        "blind_first",
        "template",
        "token_budget",
        "version",
        "design_version",
        "created_at",
        "updated_at",
    ),
    "checklist_items": (
        "category",
        "title",
        "question",
        "verification",
        "position",
        "custom",
        "created_at",
    ),
    "decisions": (
        "revision",
        "status",
        "summary",
        "rationale",
        "alternatives",
        "design_version",
        "decided_at",
    ),
    "meetings": ("started_at", "ended_at", "minutes"),
    "meeting_attendees": ("joined_at", "last_seen_at", "left_at"),
    "meeting_votes": ("vote", "decision_revision", "created_at"),
    "threads": ("mode", "models", "title", "created_at"),
    "messages": (
        "turn",
        "role",
        "content",
        "status",
        "model",
        "requested_model",
        "pushback",
        "error",
        "error_kind",
        "flags",
        "prompt",
        "judgement",
        "attempts",
        "tokens_in",
        "tokens_out",
        "cost",
        "first_token_ms",
        "latency_ms",
        "created_at",
        "updated_at",
    ),
    "generations": (
        "status",
        "model",
        "instructions",
        "content",
        "error",
        "prompt",
        "attempts",
        "tokens_in",
        "tokens_out",
        "cost",
        "created_at",
        "completed_at",
    ),
    "audit_events": ("action", "entity_type", "before", "after", "created_at"),
    "checklist_templates": ("key", "name", "description", "items", "created_at"),
    "drafts": (
        "request",
        "name",
        "problem",
        "template",
        "status",
        "model",
        "note",
        "prompt",
        "attempts",
        "tokens_in",
        "tokens_out",
        "cost",
        "created_at",
        "updated_at",
    ),
    "draft_proposals": ("position", "category", "title", "question", "status"),
    "users": ("email", "name", "role", "is_active", "created_at"),
}


def _columns(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COLUMNS[row.__tablename__]}


def _project_record(
    session: Session, project: Project, contents: _Contents, refs: _Refs
) -> ProjectRecord:
    items = contents.items[project.id]
    meetings = contents.meetings[project.id]
    decisions = contents.decisions[project.id]
    threads = contents.threads[project.id]
    messages = contents.messages[project.id]
    generations = contents.generations[project.id]
    numbered = {
        "item": items,
        "meeting": meetings,
        "decision": decisions,
        "thread": threads,
        "message": messages,
        "generation": generations,
    }
    for kind, rows in numbered.items():
        refs.assign(kind, rows)
    decisions_of, messages_of = _by(decisions, "item_id"), _by(messages, "thread_id")
    return ProjectRecord(
        ref=_ref(refs, "project", project.id),
        **_columns(project),
        created_by=refs.email(project.created_by_id),
        items=[_item_record(item, decisions_of[item.id], refs) for item in items],
        meetings=[_meeting_record(meeting, contents, refs) for meeting in meetings],
        threads=[_thread_record(thread, messages_of[thread.id], refs) for thread in threads],
        generations=[_generation_record(g, refs) for g in generations],
        audit_events=[_audit_record(session, event, refs) for event in contents.events[project.id]],
    )


def _ref(refs: _Refs, kind: str, row_id: int) -> int:
    found = refs.of(kind, row_id)
    assert found is not None, f"{kind} {row_id} was not numbered"
    return found


def _item_record(item: ChecklistItem, decisions: list[Decision], refs: _Refs) -> ItemRecord:
    return ItemRecord(
        ref=_ref(refs, "item", item.id),
        **_columns(item),
        decisions=[
            DecisionRecord(
                ref=_ref(refs, "decision", d.id),
                **_columns(d),
                decided_by=refs.email(d.decided_by_id),
                meeting=refs.of("meeting", d.meeting_id),
                attendees=_attendees_out(d.attendees, refs),
            )
            for d in decisions
        ],
    )


def _attendees_out(attendees: list[Any], refs: _Refs) -> list[Any]:
    """Attendee entries that hold a user id name the user by email instead."""
    return [
        {**{k: v for k, v in a.items() if k != "user_id"}, "user_email": refs.email(a["user_id"])}
        if isinstance(a, dict) and isinstance(a.get("user_id"), int)
        else a
        for a in attendees
    ]


def _meeting_record(meeting: Meeting, contents: _Contents, refs: _Refs) -> MeetingRecord:
    attendees = contents.attendees[meeting.id]
    votes = contents.votes[meeting.id]
    return MeetingRecord(
        ref=_ref(refs, "meeting", meeting.id),
        **_columns(meeting),
        presenter=refs.email(meeting.presenter_id),
        current_item=refs.of("item", meeting.current_item_id),
        covered_items=[_ref(refs, "item", i) for i in meeting.covered_item_ids],
        attendees=[AttendeeRecord(user=_email(refs, a.user_id), **_columns(a)) for a in attendees],
        votes=[
            VoteRecord(
                item=_ref(refs, "item", v.item_id), user=_email(refs, v.user_id), **_columns(v)
            )
            for v in votes
        ],
    )


def _email(refs: _Refs, user_id: int) -> str:
    email = refs.email(user_id)
    assert email is not None, f"user {user_id} does not exist"
    return email


def _thread_record(thread: Thread, messages: list[Message], refs: _Refs) -> ThreadRecord:
    return ThreadRecord(
        ref=_ref(refs, "thread", thread.id),
        **_columns(thread),
        item=refs.of("item", thread.checklist_item_id),
        created_by=refs.email(thread.created_by_id),
        messages=[
            MessageRecord(
                ref=_ref(refs, "message", m.id),
                **_columns(m),
                author=refs.email(m.author_id),
                reply_to=refs.of("message", m.reply_to_id),
            )
            for m in messages
        ],
    )


def _generation_record(generation: Generation, refs: _Refs) -> GenerationRecord:
    return GenerationRecord(
        ref=_ref(refs, "generation", generation.id),
        **_columns(generation),
        created_by=refs.email(generation.created_by_id),
        based_on=[
            BasisRecord(
                decision=_ref(refs, "decision", int(b["decision_id"])),
                item=_ref(refs, "item", int(b["item_id"])),
                revision=int(b["revision"]),
            )
            for b in generation.based_on
        ],
    )


def _audit_record(session: Session, event: AuditEvent, refs: _Refs) -> AuditRecord:
    return AuditRecord(
        **_columns(event),
        actor=refs.email(event.actor_id),
        entity=_audit_entity_out(session, event, refs),
    )


def _audit_entity_out(session: Session, event: AuditEvent, refs: _Refs) -> int | str | None:
    if event.entity_id is None:
        return None
    if event.entity_type == "user":
        return refs.email(event.entity_id)
    if event.entity_type == "checklist_template":
        return refs.template_key(session, event.entity_id)
    kind = AUDITED_KINDS.get(event.entity_type)
    return refs.of(kind, event.entity_id) if kind else None


def _add_instance_records(session: Session, document: BackupDocument, refs: _Refs) -> None:
    """What a whole-instance backup carries besides projects."""
    document.templates = [
        TemplateRecord(**_columns(t), created_by=refs.email(t.created_by_id))
        for t in _rows(session, ChecklistTemplate)
    ]
    drafts = _rows(session, Draft)
    refs.assign("draft", drafts)
    proposals = _by(_rows(session, DraftProposal), "draft_id")
    document.drafts = [_draft_record(draft, proposals[draft.id], refs) for draft in drafts]
    document.audit_events = [
        _audit_record(session, event, refs)
        for event in _rows(session, AuditEvent, AuditEvent.project_id.is_(None))
    ]


def _draft_record(draft: Draft, proposals: list[DraftProposal], refs: _Refs) -> DraftRecord:
    return DraftRecord(
        ref=_ref(refs, "draft", draft.id),
        **_columns(draft),
        project=refs.of("project", draft.project_id),
        created_by=refs.email(draft.created_by_id),
        proposals=[ProposalRecord(**_columns(p)) for p in proposals],
    )


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"The backup nests lists and objects more than {MAX_JSON_DEPTH} levels deep; "
        "no backup this app writes does."
    )


def parse_backup(raw: bytes | str) -> BackupDocument:
    """Read and validate a backup; refuse it, saying where, before anything is written."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidInput("The backup is not UTF-8 text") from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    except json.JSONDecodeError as exc:
        # An unterminated string ran to the end of the text, so it ended early too.
        ended_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated")
        hint = " The file ends too early: it looks truncated." if ended_early else ""
        raise InvalidInput(
            f"The backup is not valid JSON: {exc.msg} (line {exc.lineno}, "
            f"column {exc.colno}).{hint}"
        ) from exc
    if nests_deeper_than(data, MAX_JSON_DEPTH):
        raise _too_deep()
    _check_format(data)
    try:
        return BackupDocument.model_validate(data)
    except ValidationError as exc:
        raise _not_valid(exc) from exc


def _not_valid(exc: ValidationError, within: tuple[int | str, ...] = ()) -> InvalidInput:
    """A refusal naming where the backup is not valid; ``within`` is where in the backup
    the validated part sits."""
    first = exc.errors(include_url=False)[0]
    at = _path((*within, *first["loc"]))
    return InvalidInput(
        f"The backup is not valid at {at}: {error_message(first)}",
        field=at,
        errors=validation_errors(exc, within=("body", *within))[:20],
    )


def _path(location: Sequence[int | str]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _check_format(data: object) -> None:
    if not isinstance(data, dict) or data.get("format") != BACKUP_FORMAT:
        raise InvalidInput(
            f"This is not a designgate backup: its format field is not {BACKUP_FORMAT!r}",
            field="format",
        )
    if data.get("version") != BACKUP_VERSION:
        raise InvalidInput(
            f"Backup version {data.get('version')!r} cannot be read; "
            f"this designgate reads version {BACKUP_VERSION}",
            field="version",
        )


class _Ids:
    """New database ids for the document's refs, per kind."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[int, int]] = {}

    def add(self, kind: str, ref: int, new_id: int, where: str) -> None:
        table = self._ids.setdefault(kind, {})
        if ref in table:
            raise InvalidInput(f"{where}: {kind} ref {ref} is used twice", field=where)
        table[ref] = new_id

    def get(self, kind: str, ref: int | None, where: str) -> int | None:
        return None if ref is None else self.need(kind, ref, where)

    def need(self, kind: str, ref: int, where: str) -> int:
        found = self._ids.get(kind, {}).get(ref)
        if found is None:
            raise InvalidInput(
                f"{where} refers to {kind} {ref}, which the backup does not contain before it",
                field=where,
            )
        return found


class _People:
    """Database ids for the emails a backup names: existing users, or new ones."""

    def __init__(self, session: Session, records: list[UserRecord]) -> None:
        self.ids: dict[str, int] = {}
        self.created: list[str] = []
        self.matched: list[str] = []
        for record in records:
            self._add(session, record)

    def _add(self, session: Session, record: UserRecord) -> None:
        email = record.email.strip().lower()
        existing = session.scalar(select(User.id).where(User.email == email))
        if existing is not None:
            self.ids[email] = existing
            self.matched.append(email)
            return
        values = {**_values(record, "users"), "email": email, "password_hash": NO_PASSWORD}
        self.ids[email] = _insert(session, User, values)
        self.created.append(email)

    def get(self, email: str | None, where: str) -> int | None:
        return None if email is None else self.need(email, where)

    def need(self, email: str, where: str) -> int:
        found = self.ids.get(email.strip().lower())
        if found is None:
            raise InvalidInput(f"{where} names {email}, who is not among the backup's users")
        return found


def _values(record: Any, table: str) -> dict[str, Any]:
    return {name: getattr(record, name) for name in COLUMNS[table]}


def _insert(session: Session, model: type[Any], values: dict[str, Any]) -> int:
    table = model.__table__
    statement = insert(table).values(**values).returning(table.c.id)
    return int(session.execute(statement).scalar_one())


def import_backup(
    session: Session, *, raw: bytes | str, actor: User | None, catalog: TemplateCatalog
) -> ImportSummary:
    """Add everything in the backup as new rows, in the caller's one transaction.

    ``catalog`` holds this server's built-in and file templates, whose keys an imported
    template may take only with the same content."""
    document = parse_backup(raw)
    people = _People(session, document.users)
    ids = _Ids()
    projects = {
        record.ref: _import_project(session, record, ids, people, f"projects[{index}]")
        for index, record in enumerate(document.projects)
    }
    created, skipped = _import_templates(session, document.templates, people, catalog)
    for index, draft in enumerate(document.drafts):
        _import_draft(session, draft, ids, people, f"drafts[{index}]")
    _import_audit(session, document.audit_events, None, ids, people, "audit_events")
    summary = ImportSummary(
        projects=projects,
        users_created=people.created,
        users_matched=people.matched,
        templates_created=created,
        templates_skipped=skipped,
        drafts=len(document.drafts),
    )
    audit.record(
        session,
        actor=actor,
        action="backup.imported",
        entity_type="backup",
        entity_id=None,
        after={"scope": document.scope, **summary.model_dump(mode="json")},
    )
    return summary


def _import_project(
    session: Session, record: ProjectRecord, ids: _Ids, people: _People, where: str
) -> int:
    values = _values(record, "projects")
    values["created_by_id"] = people.get(record.created_by, f"{where}.created_by")
    project_id = _insert(session, Project, values)
    ids.add("project", record.ref, project_id, where)
    for index, item in enumerate(record.items):
        item_values = {**_values(item, "checklist_items"), "project_id": project_id}
        ids.add(
            "item",
            item.ref,
            _insert(session, ChecklistItem, item_values),
            f"{where}.items[{index}]",
        )
    for index, meeting in enumerate(record.meetings):
        _import_meeting(session, meeting, project_id, ids, people, f"{where}.meetings[{index}]")
    _import_decisions(session, record, ids, people, where)
    for index, thread in enumerate(record.threads):
        _import_thread(session, thread, project_id, ids, people, f"{where}.threads[{index}]")
    _import_messages(session, record, ids, people, where)
    for index, generation in enumerate(record.generations):
        _import_generation(
            session, generation, project_id, ids, people, f"{where}.generations[{index}]"
        )
    _import_audit(session, record.audit_events, project_id, ids, people, f"{where}.audit_events")
    return project_id


def _import_meeting(
    session: Session, record: MeetingRecord, project_id: int, ids: _Ids, people: _People, where: str
) -> None:
    values = {
        **_values(record, "meetings"),
        "project_id": project_id,
        "presenter_id": people.get(record.presenter, f"{where}.presenter"),
        "current_item_id": ids.get("item", record.current_item, f"{where}.current_item"),
        "covered_item_ids": [
            ids.need("item", ref, f"{where}.covered_items[{index}]")
            for index, ref in enumerate(record.covered_items)
        ],
    }
    meeting_id = _insert(session, Meeting, values)
    ids.add("meeting", record.ref, meeting_id, where)
    for index, attendee in enumerate(record.attendees):
        user_id = people.need(attendee.user, f"{where}.attendees[{index}].user")
        values = {
            **_values(attendee, "meeting_attendees"),
            "meeting_id": meeting_id,
            "user_id": user_id,
        }
        _insert(session, MeetingAttendee, values)
    for index, vote in enumerate(record.votes):
        values = {
            **_values(vote, "meeting_votes"),
            "meeting_id": meeting_id,
            "item_id": ids.need("item", vote.item, f"{where}.votes[{index}].item"),
            "user_id": people.need(vote.user, f"{where}.votes[{index}].user"),
        }
        _insert(session, MeetingVote, values)


def _import_decisions(
    session: Session, record: ProjectRecord, ids: _Ids, people: _People, where: str
) -> None:
    """In the order they were recorded (their refs), so the new ids keep that order."""
    found = [
        (decision, item.ref, f"{where}.items[{i}].decisions[{j}]")
        for i, item in enumerate(record.items)
        for j, decision in enumerate(item.decisions)
    ]
    for decision, item_ref, at in sorted(found, key=lambda entry: entry[0].ref):
        values = {
            **_values(decision, "decisions"),
            "item_id": ids.need("item", item_ref, at),
            "decided_by_id": people.get(decision.decided_by, f"{at}.decided_by"),
            "meeting_id": ids.get("meeting", decision.meeting, f"{at}.meeting"),
            "attendees": _attendees_in(decision.attendees, people, f"{at}.attendees"),
        }
        ids.add("decision", decision.ref, _insert(session, Decision, values), at)


def _attendees_in(attendees: list[Any], people: _People, where: str) -> list[Any]:
    return [
        {
            **{k: v for k, v in a.items() if k != "user_email"},
            "user_id": people.need(a["user_email"], where),
        }
        if isinstance(a, dict) and isinstance(a.get("user_email"), str)
        else a
        for a in attendees
    ]


def _import_thread(
    session: Session, record: ThreadRecord, project_id: int, ids: _Ids, people: _People, where: str
) -> None:
    values = {
        **_values(record, "threads"),
        "project_id": project_id,
        "checklist_item_id": ids.get("item", record.item, f"{where}.item"),
        "created_by_id": people.get(record.created_by, f"{where}.created_by"),
    }
    ids.add("thread", record.ref, _insert(session, Thread, values), where)


def _import_messages(
    session: Session, record: ProjectRecord, ids: _Ids, people: _People, where: str
) -> None:
    """Every thread's messages in the order they were written (their refs)."""
    found = [
        (message, thread.ref, f"{where}.threads[{i}].messages[{j}]")
        for i, thread in enumerate(record.threads)
        for j, message in enumerate(thread.messages)
    ]
    ordered = sorted(found, key=lambda entry: entry[0].ref)
    for message, thread_ref, at in ordered:
        values = {
            **_values(message, "messages"),
            "thread_id": ids.need("thread", thread_ref, at),
            "author_id": people.get(message.author, f"{at}.author"),
        }
        ids.add("message", message.ref, _insert(session, Message, values), at)
    # A reply may name a later message, so links are set once every message exists.
    for message, _thread_ref, at in ordered:
        if message.reply_to is not None:
            session.execute(
                update(Message)
                .where(Message.id == ids.need("message", message.ref, at))
                .values(reply_to_id=ids.need("message", message.reply_to, f"{at}.reply_to"))
                .execution_options(synchronize_session=False)
            )


def _import_generation(
    session: Session,
    record: GenerationRecord,
    project_id: int,
    ids: _Ids,
    people: _People,
    where: str,
) -> None:
    based_on = [
        {
            "decision_id": ids.need("decision", basis.decision, f"{where}.based_on[{i}].decision"),
            "item_id": ids.need("item", basis.item, f"{where}.based_on[{i}].item"),
            "revision": basis.revision,
        }
        for i, basis in enumerate(record.based_on)
    ]
    values = {
        **_values(record, "generations"),
        "project_id": project_id,
        "based_on": based_on,
        "created_by_id": people.get(record.created_by, f"{where}.created_by"),
    }
    ids.add("generation", record.ref, _insert(session, Generation, values), where)


def _import_audit(
    session: Session,
    records: list[AuditRecord],
    project_id: int | None,
    ids: _Ids,
    people: _People,
    where: str,
) -> None:
    for index, record in enumerate(records):
        at = f"{where}[{index}]"
        values = {
            **_values(record, "audit_events"),
            "project_id": project_id,
            "actor_id": people.get(record.actor, f"{at}.actor"),
            "entity_id": _audit_entity_in(session, record, ids, people, f"{at}.entity"),
        }
        _insert(session, AuditEvent, values)


def _audit_entity_in(
    session: Session, record: AuditRecord, ids: _Ids, people: _People, where: str
) -> int | None:
    if record.entity is None:
        return None
    if record.entity_type == "user":
        return people.need(str(record.entity), where)
    if record.entity_type == "checklist_template":
        return session.scalar(
            select(ChecklistTemplate.id).where(ChecklistTemplate.key == str(record.entity))
        )
    kind = AUDITED_KINDS.get(record.entity_type)
    if kind is None or not isinstance(record.entity, int):
        raise InvalidInput(f"{where}: a {record.entity_type} is not something a backup carries")
    return ids.need(kind, record.entity, where)


def _import_templates(
    session: Session, records: list[TemplateRecord], people: _People, catalog: TemplateCatalog
) -> tuple[list[str], list[str]]:
    """New keys are added; a key already here with the same content is skipped, else refused."""
    created: list[str] = []
    skipped: list[str] = []
    for index, record in enumerate(records):
        spec = _readable_template(record, index)
        loaded = catalog.by_key.get(record.key)
        if loaded is not None:
            # A built-in or file template: the catalog answers for its key, so a row beside
            # it would be listed twice and never used.
            if loaded.spec != spec:
                raise _template_conflict(record.key)
            skipped.append(record.key)
            continue
        existing = session.scalar(
            select(ChecklistTemplate).where(ChecklistTemplate.key == record.key)
        )
        if existing is None:
            values = {
                **_values(record, "checklist_templates"),
                "created_by_id": people.get(record.created_by, f"templates[{index}].created_by"),
            }
            _insert(session, ChecklistTemplate, values)
            created.append(record.key)
        elif (existing.name, existing.description, existing.items) == (
            record.name,
            record.description,
            record.items,
        ):
            skipped.append(record.key)
        else:
            raise _template_conflict(record.key)
    return created, skipped


def _readable_template(record: TemplateRecord, index: int) -> TemplateSpec:
    """The record as the catalog will read it once stored (its items stay JSON objects in
    the row): a template it could not read made every list of templates (the API's, the
    new-project page's) a 500."""
    fields = {"key": record.key, "name": record.name, "description": record.description}
    try:
        spec = stored_template(**fields, items=record.items)
    except ValidationError as exc:
        raise _not_valid(exc, within=("templates", index)) from None
    if spec.key != record.key:
        at = _path(("templates", index, "key"))
        raise InvalidInput(f"The backup is not valid at {at}: not a template key", field=at)
    return spec


def _template_conflict(key: str) -> Conflict:
    return Conflict(
        f"Checklist template {key!r} already exists here with other content; "
        "rename one of them before importing"
    )


def _import_draft(
    session: Session, record: DraftRecord, ids: _Ids, people: _People, where: str
) -> None:
    values = {
        **_values(record, "drafts"),
        "project_id": ids.get("project", record.project, f"{where}.project"),
        "created_by_id": people.get(record.created_by, f"{where}.created_by"),
    }
    draft_id = _insert(session, Draft, values)
    ids.add("draft", record.ref, draft_id, where)
    for proposal in record.proposals:
        _insert(
            session, DraftProposal, {**_values(proposal, "draft_proposals"), "draft_id": draft_id}
        )
