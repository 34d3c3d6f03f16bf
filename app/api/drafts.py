from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, status

from app.api.params import PathId
from app.deps import (
    CurrentUser,
    DbDep,
    EndpointDep,
    ModelCallsDep,
    SessionDep,
    TemplatesDep,
    Writer,
)
from app.models.enums import DraftStatus
from app.schemas.draft import (
    DraftCreate,
    DraftProjectCreate,
    DraftRead,
    DraftUpdate,
    ProposalCreate,
    ProposalUpdate,
    draft_read,
)
from app.schemas.project import ProjectRead
from app.services import drafts

router = APIRouter(tags=["drafts"])

# Every field of these is optional, so a request without a body means `{}`.
OptionalDraftUpdate = Annotated[DraftUpdate, Body(default_factory=DraftUpdate)]
OptionalProposalUpdate = Annotated[ProposalUpdate, Body(default_factory=ProposalUpdate)]
OptionalDraftProjectCreate = Annotated[DraftProjectCreate, Body(default_factory=DraftProjectCreate)]


@router.post("/drafts", status_code=status.HTTP_201_CREATED)
def create_draft(
    body: DraftCreate,
    session: SessionDep,
    user: Writer,
    catalog: TemplatesDep,
    endpoint: EndpointDep,
    db: DbDep,
    calls: ModelCallsDep,
    background: BackgroundTasks,
) -> DraftRead:
    """Start a review from a one-line request; the model proposes (`status` pending until then)."""
    view = drafts.create_draft(session, data=body, actor=user, catalog=catalog, endpoint=endpoint)
    if endpoint is not None and view.draft.status == DraftStatus.PENDING:
        background.add_task(
            drafts.run_draft,
            db,
            view.draft.id,
            calls,
            catalog,
            model=endpoint.model,
            keep_template=body.template is not None,
        )
    return draft_read(view)


@router.get("/drafts")
def list_drafts(session: SessionDep, user: CurrentUser) -> list[DraftRead]:
    """Every draft, newest first."""
    return [draft_read(view) for view in drafts.list_drafts(session)]


@router.get("/drafts/{draft_id}")
def get_draft(draft_id: PathId, session: SessionDep, user: CurrentUser) -> DraftRead:
    """One draft with its proposals."""
    return draft_read(drafts.view_draft(session, draft_id))


@router.patch("/drafts/{draft_id}")
def update_draft(
    draft_id: PathId,
    body: OptionalDraftUpdate,
    session: SessionDep,
    user: Writer,
    catalog: TemplatesDep,
) -> DraftRead:
    """Edit the draft's name or problem statement, or pick its template."""
    view = drafts.update_draft(session, draft_id=draft_id, data=body, actor=user, catalog=catalog)
    return draft_read(view)


@router.post("/drafts/{draft_id}/proposals", status_code=status.HTTP_201_CREATED)
def add_proposal(
    draft_id: PathId, body: ProposalCreate, session: SessionDep, user: Writer
) -> DraftRead:
    """Add the team's own focus item to the draft (accepted as written)."""
    return draft_read(drafts.add_proposal(session, draft_id=draft_id, data=body, actor=user))


@router.patch("/drafts/{draft_id}/proposals/{proposal_id}")
def update_proposal(
    draft_id: PathId,
    proposal_id: PathId,
    body: OptionalProposalUpdate,
    session: SessionDep,
    user: Writer,
) -> DraftRead:
    """Accept (`status: accepted`), drop (`dropped`) or edit one proposal."""
    view = drafts.update_proposal(
        session, draft_id=draft_id, proposal_id=proposal_id, data=body, actor=user
    )
    return draft_read(view)


@router.post("/drafts/{draft_id}/project", status_code=status.HTTP_201_CREATED)
def create_project(
    draft_id: PathId,
    body: OptionalDraftProjectCreate,
    session: SessionDep,
    user: Writer,
    catalog: TemplatesDep,
) -> ProjectRead:
    """Make the project: the template's items plus only the accepted proposals."""
    project = drafts.create_project(
        session, draft_id=draft_id, data=body, actor=user, catalog=catalog
    )
    return ProjectRead.model_validate(project)
