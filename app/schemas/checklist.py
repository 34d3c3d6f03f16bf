from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, TypeAdapter

from app.models.enums import Category, DecisionStatus
from app.schemas.common import Count, Read, RequiredText, Strict, Title

if TYPE_CHECKING:
    from app.models import Decision
    from app.services.decisions import ItemWithDecision


class ChecklistItemCreate(Strict):
    category: Category
    title: Title
    question: RequiredText


class UserBrief(Read):
    id: int
    name: str
    email: str


class DecisionWrite(Strict):
    """A new revision of an item's decision.

    ``version`` is the revision this one supersedes (0 or absent for the first);
    a stale value is refused with 409 instead of overwriting someone else's decision.
    A blank alternative is refused, as the schema says, rather than dropped unseen (the
    web form drops blank lines of its textarea before this, app/web/forms.py's ``lines``).
    """

    status: DecisionStatus
    summary: RequiredText
    rationale: RequiredText
    alternatives: list[RequiredText] = Field(default_factory=list, max_length=50)
    version: Count | None = None


class DecisionRead(Read):
    id: int
    item_id: int
    status: DecisionStatus
    summary: str
    rationale: str
    alternatives: list[str]
    revision: int
    version: int = Field(description="Send this back as `version` to supersede this revision.")
    design_version: int
    decided_by: UserBrief | None
    decided_at: datetime
    stale: bool


class ChecklistItemRead(Read):
    id: int
    project_id: int
    category: Category
    title: str
    question: str
    position: int
    custom: bool
    state: str = Field(description="open, decided, accepted_risk, not_applicable or stale")
    decision: DecisionRead | None


def decision_read(decision: "Decision", *, stale: bool) -> DecisionRead:
    return DecisionRead(
        id=decision.id,
        item_id=decision.item_id,
        status=DecisionStatus(decision.status),
        summary=decision.summary,
        rationale=decision.rationale,
        alternatives=list(decision.alternatives),
        revision=decision.revision,
        version=decision.revision,
        design_version=decision.design_version,
        decided_by=UserBrief.model_validate(decision.decided_by) if decision.decided_by else None,
        decided_at=decision.decided_at,
        stale=stale,
    )


def item_read(entry: "ItemWithDecision") -> ChecklistItemRead:
    item = entry.item
    return ChecklistItemRead(
        id=item.id,
        project_id=item.project_id,
        category=Category(item.category),
        title=item.title,
        question=item.question,
        position=item.position,
        custom=item.custom,
        state=entry.state,
        decision=decision_read(entry.decision, stale=entry.stale) if entry.decision else None,
    )


_CHECKLIST = TypeAdapter(list[ChecklistItemRead])


def checklist_json(entries: "list[ItemWithDecision]") -> bytes:
    """The checklist as the API sends it, as FastAPI would serialize its response model."""
    return _CHECKLIST.dump_json([item_read(entry) for entry in entries], by_alias=True)


class DecisionHistoryRead(BaseModel):
    item_id: int
    revisions: list[DecisionRead]
