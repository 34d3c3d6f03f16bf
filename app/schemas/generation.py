from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from app.models.enums import GenerationStatus
from app.schemas.common import NO_NUL, Read, Strict

if TYPE_CHECKING:
    from app.services.generation import GenerationView


class GenerationCreate(Strict):
    instructions: str | None = Field(default=None, max_length=20_000, pattern=NO_NUL)


class BasedOn(BaseModel):
    decision_id: int
    item_id: int
    revision: int


class OutdatedRead(BaseModel):
    item_id: int
    title: str
    reason: str = Field(description="superseded, stale, added or removed")
    detail: str


class GenerationRead(Read):
    id: int
    project_id: int
    status: GenerationStatus
    model: str
    instructions: str
    content: str
    error: str | None
    based_on: list[BasedOn]
    attempts: list[dict[str, Any]] = Field(
        description="Each failed model attempt (retry, fallback, circuit refusal) behind it."
    )
    tokens_in: int | None = Field(
        description="Tokens of every attempt's prompt, failed ones included; null when unknown."
    )
    tokens_out: int | None = Field(description="Tokens of every attempt's answer, likewise.")
    cost: float | None = Field(description="Null for models litellm has no price for.")
    created_at: datetime
    completed_at: datetime | None
    outdated: bool = Field(
        default=False,
        description="A decision it was based on has been superseded or gone stale since.",
    )
    outdated_because: list[OutdatedRead] = Field(default_factory=list)


def generation_read(view: "GenerationView") -> GenerationRead:
    read = GenerationRead.model_validate(view.generation)
    read.outdated = view.outdated
    read.outdated_because = [OutdatedRead(**vars(reason)) for reason in view.outdated_because]
    return read


class GenerationComparisonRead(BaseModel):
    from_id: int
    to_id: int
    content_diff: str = Field(description="Unified diff of the two generations' code.")
    basis_diff: str = Field(description="Unified diff of the decisions each was based on.")
