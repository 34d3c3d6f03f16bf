from datetime import datetime

from pydantic import BaseModel, Field

from app.models.enums import GenerationStatus
from app.schemas.common import NO_NUL, Read, Strict


class GenerationCreate(Strict):
    instructions: str | None = Field(default=None, max_length=20_000, pattern=NO_NUL)


class BasedOn(BaseModel):
    decision_id: int
    item_id: int
    revision: int


class GenerationRead(Read):
    id: int
    project_id: int
    status: GenerationStatus
    model: str
    instructions: str
    content: str
    error: str | None
    based_on: list[BasedOn]
    created_at: datetime
    completed_at: datetime | None
