from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Ids are INTEGER columns: PostgreSQL refuses anything larger (and SQLite anything past
# 64 bits), so a bigger number is invalid input rather than a database error.
MAX_ID = 2**31 - 1
MAX_COUNT = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=100_000)]
RequiredText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100_000)
]


class Strict(BaseModel):
    """Request bodies refuse unknown fields so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)
