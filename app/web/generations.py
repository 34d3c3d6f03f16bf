"""Code generation from the review page, streamed into it as the model writes."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.responses import Response

from app.api.params import PathId
from app.deps import DbDep, EndpointDep, ModelCallsDep, SessionDep
from app.errors import InvalidInput
from app.schemas.generation import GenerationCreate
from app.services import generation as generation_service
from app.web.deps import WebUser, WebWriter, check_csrf, require_setup_done
from app.web.forms import parse
from app.web.templating import fragment, page

router = APIRouter(dependencies=[Depends(require_setup_done), Depends(check_csrf)])


@router.post("/projects/{project_id}/generations", response_class=HTMLResponse)
def start_generation(
    request: Request,
    project_id: PathId,
    session: SessionDep,
    user: WebWriter,
    db: DbDep,
    endpoint: EndpointDep,
    calls: ModelCallsDep,
    background: BackgroundTasks,
    instructions: Annotated[str, Form()] = "",
) -> Response:
    """Generate code if the gate is open (the server decides), and stream it into the page."""
    # Checked as the API checks them: a NUL was a 500 on PostgreSQL, and any length was kept.
    data, errors = parse(GenerationCreate, {"instructions": instructions.strip() or None})
    if data is None:
        raise InvalidInput(f"Instructions: {errors['instructions']}", field="instructions")
    generation = generation_service.start_generation(
        session,
        project_id=project_id,
        actor=user,
        instructions=data.instructions,
        endpoint=endpoint,
    )
    background.add_task(generation_service.run_generation, db, calls, generation.id)
    return fragment(request, "_generation.html", {"generation": generation, "live": True})


@router.get("/generations/{generation_id}", response_class=HTMLResponse)
def generation_page(
    request: Request, generation_id: PathId, session: SessionDep, user: WebUser
) -> Response:
    """One generation: its code (streaming while the model writes) and what it was based on."""
    generation = generation_service.get_generation(session, generation_id)
    live = generation.status in {"pending", "streaming"}
    return page(request, "generation.html", {"generation": generation, "live": live})


@router.get("/generations/{generation_id}/code.txt")
def generation_text(generation_id: PathId, session: SessionDep, user: WebUser) -> Response:
    """The generated code as plain text, for copying or saving."""
    generation = generation_service.get_generation(session, generation_id)
    return PlainTextResponse(generation.content)
