"""Path and form parameters shared by the JSON and HTML routers."""

from typing import Annotated

from fastapi import Form, Path

from app.schemas.common import MAX_ID

# An id beyond what the INTEGER columns hold is a 422, never a database overflow (500).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The same for an id a page's form sends.
FormId = Annotated[int, Form(ge=1, le=MAX_ID)]
