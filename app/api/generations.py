from fastapi import APIRouter, BackgroundTasks, status

from app.api.params import PathId
from app.deps import CurrentUser, DbDep, EndpointDep, ModelCallsDep, SessionDep, Writer
from app.schemas.generation import GenerationCreate, GenerationRead
from app.services import generation as generation_service

router = APIRouter(tags=["generations"])


@router.post("/projects/{project_id}/generations", status_code=status.HTTP_202_ACCEPTED)
def start_generation(
    project_id: PathId,
    body: GenerationCreate,
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
    """One generation: its status, the code so far, and the decision revisions it used."""
    return GenerationRead.model_validate(generation_service.get_generation(session, generation_id))


@router.get("/projects/{project_id}/generations")
def list_generations(
    project_id: PathId, session: SessionDep, user: CurrentUser
) -> list[GenerationRead]:
    """Every generation of the project, oldest first."""
    found = generation_service.list_generations(session, project_id=project_id)
    return [GenerationRead.model_validate(g) for g in found]
