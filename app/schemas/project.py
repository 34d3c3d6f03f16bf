from datetime import datetime

from pydantic import Field

from app.schemas.common import Count, Flag, Positive, Read, RequiredText, Strict, Text, Title
from app.schemas.template import DEFAULT_TEMPLATE, TemplateKey

BUDGET_HELP = "Model tokens (in and out) the project may spend on debates."


class ProjectCreate(Strict):
    name: Title
    problem: RequiredText
    architecture: Text = ""
    data_model: Text = ""
    constraints: Text = ""
    blind_first: Flag = True
    token_budget: Count | None = Field(default=None, description=BUDGET_HELP)
    template: TemplateKey = Field(
        default=DEFAULT_TEMPLATE, description="The checklist template to start from."
    )


class ProjectUpdate(Strict):
    """Changed fields plus the version they were based on."""

    version: Positive = Field(description="The project version this edit was based on.")
    name: Title | None = None
    problem: RequiredText | None = None
    architecture: Text | None = None
    data_model: Text | None = None
    constraints: Text | None = None
    blind_first: Flag | None = None
    token_budget: Count | None = Field(
        default=None, description=BUDGET_HELP + " null removes the limit."
    )


class GateSummary(Read):
    open: bool
    decided: int
    total: int
    missing_count: int
    stale_count: int


class ProjectRead(Read):
    id: int
    name: str
    problem: str
    architecture: str
    data_model: str
    constraints: str
    blind_first: bool
    token_budget: int | None
    template: str
    version: int
    design_version: int
    created_at: datetime
    updated_at: datetime


class ProjectWithGate(ProjectRead):
    gate: GateSummary
