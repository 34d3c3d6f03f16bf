"""The backup format: a versioned JSON document, validated before anything is written.

Rows refer to each other by ``ref`` numbers local to the document (so two exports of the
same data are identical, whatever the database ids were) and to users by email.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models.enums import Role

BACKUP_FORMAT = "designgate-backup"
BACKUP_VERSION = 1

Email = str
JsonObject = dict[str, Any]


class Record(BaseModel):
    """Unknown fields are refused: a file from a newer designgate says so by its version."""

    model_config = ConfigDict(extra="forbid")


class UserRecord(Record):
    email: Email
    name: str
    role: Role
    is_active: bool
    created_at: datetime


class DecisionRecord(Record):
    ref: int
    revision: int
    status: str
    summary: str
    rationale: str
    alternatives: list[str]
    design_version: int
    decided_by: Email | None
    decided_at: datetime
    meeting: int | None
    attendees: list[Any]


class ItemRecord(Record):
    ref: int
    category: str
    title: str
    question: str
    verification: str
    position: int
    custom: bool
    created_at: datetime
    decisions: list[DecisionRecord]


class MessageRecord(Record):
    ref: int
    turn: int
    role: str
    content: str
    status: str
    model: str | None
    requested_model: str | None = None
    author: Email | None
    reply_to: int | None
    pushback: bool
    error: str | None
    error_kind: str | None
    flags: list[str]
    prompt: list[JsonObject]
    judgement: JsonObject | None
    attempts: list[JsonObject] = []
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    first_token_ms: int | None
    latency_ms: int | None
    created_at: datetime
    updated_at: datetime


class ThreadRecord(Record):
    ref: int
    item: int | None
    mode: str
    models: list[str]
    title: str
    created_by: Email | None
    created_at: datetime
    messages: list[MessageRecord]


class BasisRecord(Record):
    decision: int
    item: int
    revision: int


class GenerationRecord(Record):
    ref: int
    status: str
    model: str
    instructions: str
    content: str
    error: str | None
    prompt: list[JsonObject]
    based_on: list[BasisRecord]
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
    vote: str
    decision_revision: int | None = None
    created_at: datetime


class MeetingRecord(Record):
    ref: int
    presenter: Email | None
    current_item: int | None
    covered_items: list[int] = []
    started_at: datetime
    ended_at: datetime | None
    minutes: str | None
    attendees: list[AttendeeRecord]
    votes: list[VoteRecord]


class AuditRecord(Record):
    actor: Email | None
    action: str
    entity_type: str
    entity: int | str | None = Field(
        description="The entity's ref (its email for users, its key for templates); "
        "null for entities a backup does not carry, such as API tokens."
    )
    before: JsonObject | None
    after: JsonObject | None
    created_at: datetime


class ProjectRecord(Record):
    ref: int
    name: str
    problem: str
    architecture: str
    data_model: str
    constraints: str
    blind_first: bool
    template: str
    token_budget: int | None
    version: int
    design_version: int
    created_by: Email | None
    created_at: datetime
    updated_at: datetime
    items: list[ItemRecord]
    meetings: list[MeetingRecord]
    threads: list[ThreadRecord]
    generations: list[GenerationRecord]
    audit_events: list[AuditRecord]


class TemplateRecord(Record):
    key: str
    name: str
    description: str
    items: list[JsonObject]
    created_by: Email | None
    created_at: datetime


class ProposalRecord(Record):
    position: int
    category: str
    title: str
    question: str
    status: str


class DraftRecord(Record):
    ref: int
    request: str
    name: str
    problem: str
    template: str
    status: str
    model: str | None
    note: str
    prompt: list[JsonObject]
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
