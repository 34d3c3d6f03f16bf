from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, field_validator

from app.models.enums import Category
from app.schemas.common import RequiredText, Strict, Text, Title

DEFAULT_TEMPLATE = "generic-service"

TemplateKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$"),
    Field(description="Lower-case letters, digits and dashes, e.g. `rabbitmq-consumer`."),
]


class TemplateItem(Strict):
    category: Category
    title: Title
    question: RequiredText
    verification: Text = Field(default="", description="How a test would prove the decision.")


class TemplateSpec(Strict):
    """A checklist template as written in a YAML or JSON file or sent to the API."""

    key: TemplateKey
    name: Title
    description: Text = ""
    items: list[TemplateItem] = Field(min_length=1, max_length=200)

    @field_validator("items")
    @classmethod
    def _covers_every_category(cls, items: list[TemplateItem]) -> list[TemplateItem]:
        covered = {item.category for item in items}
        missing = [category.value for category in Category if category not in covered]
        if missing:
            raise ValueError(f"must cover every category; missing: {', '.join(missing)}")
        return items


def stored_template(
    *, key: str, name: str, description: str, items: Sequence[object]
) -> TemplateSpec:
    """A template as a row stores it (items as JSON objects), read as the catalog reads it."""
    fields = {"key": key, "name": name, "description": description, "items": list(items)}
    return TemplateSpec.model_validate(fields)


class TemplateRead(BaseModel):
    key: str
    name: str
    description: str
    source: str = Field(description="`built-in`, `file:NAME` or `api`.")
    items: list[TemplateItem]
