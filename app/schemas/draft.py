from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from app.models.enums import Category, DraftStatus, ProposalStatus
from app.schemas.common import Flag, Read, RequiredText, Strict, Text, Title
from app.schemas.template import TemplateKey

if TYPE_CHECKING:
    from app.services.drafts import DraftView


class DraftCreate(Strict):
    request: RequiredText = Field(
        max_length=5_000, description="The one-line request, as typed to a coding assistant."
    )
    template: TemplateKey | None = Field(
        default=None, description="Skip the model's suggestion and use this template."
    )


class DraftUpdate(Strict):
    name: Title | None = None
    problem: RequiredText | None = None
    template: TemplateKey | None = None


class ProposalCreate(Strict):
    category: Category
    title: Title
    question: RequiredText


class ProposalUpdate(Strict):
    """Accept, drop or reset a proposal, and edit its words."""

    status: ProposalStatus | None = None
    category: Category | None = None
    title: Title | None = None
    question: RequiredText | None = None


class DraftProjectCreate(Strict):
    """What the draft does not know yet; the rest comes from the draft."""

    architecture: Text = ""
    data_model: Text = ""
    constraints: Text = ""
    blind_first: Flag = True


class ProposalRead(Read):
    id: int
    position: int
    category: Category
    title: str
    question: str
    status: ProposalStatus


class DraftRead(Read):
    id: int
    request: str
    name: str
    problem: str
    template: str
    status: DraftStatus
    model: str | None
    note: str = Field(description="Why there are no proposals, when there are none.")
    attempts: list[dict[str, Any]] = Field(
        description="Each failed model attempt (retry, fallback, circuit refusal) behind it."
    )
    tokens_in: int | None = Field(
        description="Tokens of every attempt's prompt, failed ones included; null when unknown."
    )
    tokens_out: int | None = Field(description="Tokens of every attempt's answer, likewise.")
    cost: float | None = Field(description="Null for models litellm has no price for.")
    project_id: int | None
    proposals: list[ProposalRead]
    created_at: datetime
    updated_at: datetime


class DraftReply(BaseModel):
    """What the model is asked to return; proposals are checked one by one."""

    name: str = ""
    problem: str = ""
    template: str = ""
    proposals: list[object] = Field(default_factory=list)


def draft_read(view: "DraftView") -> DraftRead:
    fields = {
        name: getattr(view.draft, name) for name in DraftRead.model_fields if name != "proposals"
    }
    fields["proposals"] = [ProposalRead.model_validate(p) for p in view.proposals]
    return DraftRead.model_validate(fields)
