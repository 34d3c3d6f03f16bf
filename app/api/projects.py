from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from app.api.paging import NEXT_PAGE_LINK, link_next_page
from app.api.params import MAX_PAGE_SIZE, AfterId, BeforeId, PageSize, PathId
from app.deps import (
    CurrentUser,
    RequiredBearerDep,
    SessionDep,
    TemplatesDep,
    Writer,
    authenticated_read,
)
from app.kept import Kept
from app.schemas.audit import AuditEventRead
from app.schemas.checklist import (
    ChecklistItemCreate,
    ChecklistItemRead,
    checklist_json,
    item_read,
)
from app.schemas.gate import GateRead, gate_read
from app.schemas.project import (
    GateSummary,
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
    ProjectWithGate,
)
from app.services import audit, decisions, projects, review
from app.services.gate import GateState, gate, gate_of
from app.services.users import Caller

router = APIRouter(tags=["projects"])
# The checklist's JSON by project id and the project's review revision outside its debates.
KeptChecklists = Kept[tuple[int, int], bytes]


def _with_gate(project: ProjectRead, state: GateState) -> ProjectWithGate:
    summary = GateSummary(
        open=state.open,
        decided=state.decided,
        total=state.total,
        missing_count=len(state.missing),
        stale_count=len(state.stale),
    )
    return ProjectWithGate(**project.model_dump(), gate=summary)


@router.post("/projects", status_code=status.HTTP_201_CREATED)
def create_project(
    body: ProjectCreate, session: SessionDep, user: Writer, catalog: TemplatesDep
) -> ProjectWithGate:
    """Create a project; its checklist comes from `template` (default `generic-service`)."""
    project = projects.create_project(session, data=body, actor=user, catalog=catalog)
    return _with_gate(ProjectRead.model_validate(project), gate(session, project))


@router.get("/projects", responses=NEXT_PAGE_LINK)
def list_projects(
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    limit: PageSize = 100,
    after: AfterId = 0,
) -> list[ProjectRead]:
    """One page of projects by id; while more follow, a `Link` header (`rel="next"`)
    gives the next page's URL."""
    found = projects.project_page(session, after=after, limit=limit)
    link_next_page(request, response, found, cursor="after")
    return [ProjectRead.model_validate(p) for p in found.rows]


@router.get("/projects/{project_id}")
def get_project(project_id: PathId, session: SessionDep, user: CurrentUser) -> ProjectWithGate:
    """One project with a summary of its gate."""
    project = projects.get_project(session, project_id)
    return _with_gate(ProjectRead.model_validate(project), gate(session, project))


@router.patch("/projects/{project_id}")
def update_project(
    project_id: PathId, body: ProjectUpdate, session: SessionDep, user: Writer
) -> ProjectWithGate:
    """Edit the design; send the version you read. Design edits make decisions stale."""
    project = projects.update_project(session, project_id=project_id, data=body, actor=user)
    return _with_gate(ProjectRead.model_validate(project), gate(session, project))


@router.get("/projects/{project_id}/checklist", response_model=list[ChecklistItemRead])
async def get_checklist(
    project_id: PathId, request: Request, credentials: RequiredBearerDep
) -> Response:
    """The checklist with each item's current decision (null when undecided)."""

    # Scripts and coding agents read it whole and often: one read on one thread, and its JSON
    # made once per change of what it shows, as the review page is (app/kept.py).
    def read_checklist(session: Session, _caller: Caller) -> bytes:
        # Read before the checklist: what is read after it is at least this new.
        revisions = review.page_revisions(session, project_id=project_id)
        kept: KeptChecklists = request.app.state.checklists
        return kept.get_or_render(
            (project_id, revisions.outside_debates),
            lambda: checklist_json(
                decisions.checklist(session, projects.get_project(session, project_id))
            ),
        )

    body = await authenticated_read(request, credentials, read_checklist)
    return Response(body, media_type="application/json")


@router.post("/projects/{project_id}/checklist", status_code=status.HTTP_201_CREATED)
def add_checklist_item(
    project_id: PathId, body: ChecklistItemCreate, session: SessionDep, user: Writer
) -> ChecklistItemRead:
    """Add a custom checklist item; the gate stays closed until it is decided."""
    return item_read(decisions.add_item(session, project_id=project_id, data=body, actor=user))


@router.get("/projects/{project_id}/gate")
async def get_gate(
    project_id: PathId, request: Request, credentials: RequiredBearerDep
) -> GateRead:
    """Whether code generation is allowed, and which items keep the gate closed."""

    # Scripts and CI poll this: the whole request is one read transaction on one thread.
    def read_gate(session: Session, _caller: Caller) -> GateRead:
        return gate_read(gate_of(session, project_id))

    return await authenticated_read(request, credentials, read_gate)


@router.get("/projects/{project_id}/audit", responses=NEXT_PAGE_LINK)
def get_audit(
    project_id: PathId,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    limit: PageSize = MAX_PAGE_SIZE,
    before: BeforeId = None,
) -> list[AuditEventRead]:
    """One page of the project's audit trail, newest first; while older events remain, a
    `Link` header (`rel="next"`) gives the next page's URL."""
    projects.get_project(session, project_id)
    found = audit.project_events(session, project_id=project_id, limit=limit, before=before)
    link_next_page(request, response, found, cursor="before")
    return [AuditEventRead.model_validate(e) for e in found.rows]
