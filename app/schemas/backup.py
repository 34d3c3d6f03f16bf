"""The backup format: a versioned JSON document, validated before anything is written.

Rows refer to each other by ``ref`` numbers local to the document (so two exports of the
same data are identical, whatever the database ids were) and to users by email.
"""

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.models.enums import (
    Category,
    DecisionStatus,
    DraftStatus,
    GenerationStatus,
    MessageRole,
    MessageStatus,
    ProposalStatus,
    Role,
    ThreadMode,
    Vote,
)
from app.schemas.common import Count, Positive, storable, storable_json

BACKUP_FORMAT = "designgate-backup"
BACKUP_VERSION = 1

# A backup carries what an instance stored, so its limits are the columns' own rather than
# the API's (a model's reply may be longer than anything a person may send): strings within
# their column's length, numbers within INTEGER, and the closed vocabularies the app reads
# back. Past them an import was a 500 on PostgreSQL, or stored a row the app could not show
# on SQLite (tests/hardening/test_import_fuzz.py). Characters no database can store become
# U+FFFD, as they do in a model's text (``storable``): an instance on SQLite may hold NUL in
# replies stored before that, and its backups must restore on either database.
Storable = BeforeValidator(lambda value: storable(value) if isinstance(value, str) else value)
StoredText = Annotated[str, Storable]
Email = Annotated[str, StringConstraints(max_length=320), Storable]
Name = Annotated[str, StringConstraints(max_length=200), Storable]
Key = Annotated[str, StringConstraints(max_length=64), Storable]
ErrorKind = Annotated[str, StringConstraints(max_length=32), Storable]
# Numbers the app counts itself start where it starts them: a project's version and design
# version, a decision's revision and the turns of a thread at 1 (``Positive``), positions in
# a list at 0. An imported project at version 0 could never be edited (the API asks for
# version 1 or more), and a revision below 1 sorted under the ones the app adds after it.
Position = Count
# Tokens, milliseconds, budgets and money are never negative (``Count``), nor infinite or NaN
# (which JSON as Python reads it allows): a negative count imported, and the project's usage
# added it up.
Cost = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# Values of the JSON columns (prompts, judgements, audit snapshots...), carried verbatim but
# for what no database can store: PostgreSQL's json column kept a lone surrogate, and every
# read of its row (a page, an export) then failed.
JsonValue = Annotated[Any, BeforeValidator(storable_json)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(storable_json)]


def _each_once(values: Iterable[Hashable], what: str) -> None:
    """Rows the database keeps unique appear once: a second was a 500 half way through."""
    seen: set[Hashable] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value} appears more than once")
        seen.add(value)


class Record(BaseModel):
    """Unknown fields are refused: a file from a newer designgate says so by its version."""

    model_config = ConfigDict(extra="forbid")


class UserRecord(Record):
    email: Email
    name: Name
    role: Role
    is_active: bool
    created_at: datetime


class DecisionRecord(Record):
    ref: int
    revision: Positive
    status: DecisionStatus
    summary: StoredText
    rationale: StoredText
    alternatives: list[StoredText]
    design_version: Positive
    decided_by: Email | None
    decided_at: datetime
    meeting: int | None
    attendees: list[JsonValue]


class ItemRecord(Record):
    ref: int
    category: Category
    title: Name
    question: StoredText
    verification: StoredText
    position: Position
    custom: bool
    created_at: datetime
    decisions: list[DecisionRecord]

    @model_validator(mode="after")
    def _each_revision_once(self) -> Self:
        _each_once((d.revision for d in self.decisions), "decision revision")
        return self


class MessageRecord(Record):
    ref: int
    turn: Positive
    role: MessageRole
    content: StoredText
    status: MessageStatus
    model: Name | None
    requested_model: Name | None = None
    author: Email | None
    reply_to: int | None
    pushback: bool
    error: StoredText | None
    error_kind: ErrorKind | None
    flags: list[Key]
    prompt: list[JsonObject]
    judgement: JsonObject | None
    attempts: list[JsonObject] = []
    tokens_in: Count | None
    tokens_out: Count | None
    cost: Cost | None
    first_token_ms: Count | None
    latency_ms: Count | None
    created_at: datetime
    updated_at: datetime


class ThreadRecord(Record):
    ref: int
    item: int | None
    mode: ThreadMode
    models: list[Name]
    title: Name
    created_by: Email | None
    created_at: datetime
    messages: list[MessageRecord]


class BasisRecord(Record):
    decision: int
    item: int
    revision: Positive


class GenerationRecord(Record):
    ref: int
    status: GenerationStatus
    model: Name
    instructions: StoredText
    content: StoredText
    error: StoredText | None
    prompt: list[JsonObject]
    based_on: list[BasisRecord]
    # Optional: backups made before generations stored their usage have none.
    attempts: list[JsonObject] = []
    tokens_in: Count | None = None
    tokens_out: Count | None = None
    cost: Cost | None = None
    created_by: Email | None
    created_at: datetime
    completed_at: datetime | None


class AttendeeRecord(Record):
    user: Email
    joined_at: datetime
    last_seen_at: datetime
    left_at: datetime | None = None


class VoteRecord(Record):
    item: int
    user: Email
    vote: Vote
    decision_revision: Positive | None = None
    created_at: datetime


class MeetingRecord(Record):
    ref: int
    presenter: Email | None
    current_item: int | None
    covered_items: list[int] = []
    started_at: datetime
    ended_at: datetime | None
    minutes: StoredText | None
    attendees: list[AttendeeRecord]
    votes: list[VoteRecord]

    @model_validator(mode="after")
    def _each_person_once(self) -> Self:
        # Emails name users whatever their case (app/services/backup.py's _People).
        _each_once((a.user.strip().lower() for a in self.attendees), "attendee")
        votes = ((v.item, v.user.strip().lower()) for v in self.votes)
        _each_once(votes, "vote (item ref, user)")
        return self


class AuditRecord(Record):
    actor: Email | None
    action: Key
    entity_type: Key
    entity: int | Email | None = Field(
        description="The entity's ref (its email for users, its key for templates); "
        "null for entities a backup does not carry, such as API tokens."
    )
    before: JsonObject | None
    after: JsonObject | None
    created_at: datetime


class ProjectRecord(Record):
    ref: int
    name: Name
    problem: StoredText
    architecture: StoredText
    data_model: StoredText
    constraints: StoredText
    blind_first: bool
    template: Key
    token_budget: Count | None
    version: Positive
    design_version: Positive
    created_by: Email | None
    created_at: datetime
    updated_at: datetime
    items: list[ItemRecord]
    meetings: list[MeetingRecord]
    threads: list[ThreadRecord]
    generations: list[GenerationRecord]
    audit_events: list[AuditRecord]


class TemplateRecord(Record):
    key: Key
    name: Name
    description: StoredText
    items: list[JsonObject]
    created_by: Email | None
    created_at: datetime


class ProposalRecord(Record):
    position: Position
    category: Category
    title: Name
    question: StoredText
    status: ProposalStatus


class DraftRecord(Record):
    ref: int
    request: StoredText
    name: Name
    problem: StoredText
    template: Key
    status: DraftStatus
    model: Name | None
    note: StoredText
    prompt: list[JsonObject]
    attempts: list[JsonObject] = []
    # Optional: backups made before drafts stored their usage have none.
    tokens_in: Count | None = None
    tokens_out: Count | None = None
    cost: Cost | None = None
    project: int | None
    created_by: Email | None
    created_at: datetime
    updated_at: datetime
    proposals: list[ProposalRecord]


class BackupDocument(Record):
    format: Literal["designgate-backup"]
    version: Literal[1]
    exported_at: datetime
    scope: Literal["project", "all"]
    users: list[UserRecord]
    projects: list[ProjectRecord]
    templates: list[TemplateRecord] = Field(default_factory=list)
    drafts: list[DraftRecord] = Field(default_factory=list)
    audit_events: list[AuditRecord] = Field(
        default_factory=list, description="Events tied to no project (users, tokens, templates)."
    )


class ImportSummary(BaseModel):
    projects: dict[int, int] = Field(description="Each project's ref in the file -> its new id.")
    users_created: list[Email]
    users_matched: list[Email]
    templates_created: list[str]
    templates_skipped: list[str]
    drafts: int
