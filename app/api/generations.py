from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Depends, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.api.params import PathId
from app.deps import (
    CurrentUser,
    DbDep,
    EndpointDep,
    HubDep,
    ModelCallsDep,
    SessionDep,
    Writer,
    api_stream_held,
)
from app.problems import problem_responses
from app.schemas.generation import (
    GenerationComparisonRead,
    GenerationCreate,
    GenerationRead,
    generation_read,
)
from app.services import generation as generation_service

router = APIRouter(tags=["generations"])

# Every field is optional, so a request without a body asks for the defaults.
OptionalGenerationCreate = Annotated[GenerationCreate, Body(default_factory=GenerationCreate)]


@router.post("/projects/{project_id}/generations", status_code=status.HTTP_202_ACCEPTED)
def start_generation(
    project_id: PathId,
    body: OptionalGenerationCreate,
    session: SessionDep,
    user: Writer,
    db: DbDep,
    endpoint: EndpointDep,
    calls: ModelCallsDep,
    background: BackgroundTasks,
) -> GenerationRead:
    """Generate code from the decided design; 409 with what keeps the gate closed."""
    generation = generation_service.start_generation(
        session,
        project_id=project_id,
        actor=user,
        instructions=body.instructions,
        endpoint=endpoint,
    )
    background.add_task(generation_service.run_generation, db, calls, generation.id)
    return GenerationRead.model_validate(generation)


@router.get("/generations/{generation_id}")
def get_generation(generation_id: PathId, session: SessionDep, user: CurrentUser) -> GenerationRead:
    """One generation: its status, the code so far, the decisions it used, whether outdated."""
    return generation_read(generation_service.view_generation(session, generation_id))


@router.get("/projects/{project_id}/generations")
def list_generations(
    project_id: PathId, session: SessionDep, user: CurrentUser
) -> list[GenerationRead]:
    """Every generation of the project, oldest first, each with `outdated`."""
    views = generation_service.generation_views(session, project_id=project_id)
    return [generation_read(view) for view in views]


@router.get("/generations/{from_id}/compare/{to_id}")
def compare_generations(
    from_id: PathId, to_id: PathId, session: SessionDep, user: CurrentUser
) -> GenerationComparisonRead:
    """Unified diffs from one generation to another: their code and their decision bases."""
    comparison = generation_service.compare_generations(session, from_id=from_id, to_id=to_id)
    return GenerationComparisonRead(**vars(comparison))


def _existing_generation(generation_id: PathId, session: SessionDep, user: CurrentUser) -> int:
    """404 before the stream starts, not in the middle of it."""
    return generation_service.get_generation(session, generation_id).id


@router.get(
    "/generations/{generation_id}/events",
    response_class=EventSourceResponse,
    dependencies=[Depends(api_stream_held)],
    responses=problem_responses(429),
)
async def generation_events(
    generation_id: Annotated[int, Depends(_existing_generation)], db: DbDep, hub: HubDep
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: `content` (the text so far), `delta` (new text), then `done`."""
    async for item in generation_service.stream_text(db, hub, generation_id):
        kind = item.pop("event")
        yield ServerSentEvent(event=kind, data=item)
