"""Path, query and form parameters shared by the JSON and HTML routers."""

from typing import Annotated

from fastapi import Form, Path, Query

from app.schemas.common import MAX_ID

# An id beyond what the INTEGER columns hold is a 422, never a database overflow (500).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The same for an id a page's form sends.
FormId = Annotated[int, Form(ge=1, le=MAX_ID)]

# Lists answered a page at a time (app/api/paging.py): how many rows a page holds (each
# route gives its default), and the id it starts past, bounded as ids are.
MAX_PAGE_SIZE = 200
PageSize = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"How many to answer, 1 to {MAX_PAGE_SIZE}.")
]
AfterId = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_ID,
        description="Only those with a greater id: the last id of the page before (0: start).",
    ),
]
BeforeId = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_ID,
        description="Only those with a smaller id: the last id of the page before "
        "(absent: start at the newest).",
    ),
]
