from fastapi import APIRouter
from fastapi.responses import Response

from app.api.params import PathId
from app.deps import CurrentUser, SessionDep
from app.responses import download
from app.services import exports

router = APIRouter(tags=["exports"])


@router.get("/projects/{project_id}/exports/design-pack.md", response_class=Response)
def design_pack(project_id: PathId, session: SessionDep, user: CurrentUser) -> Response:
    """The design pack: one Markdown brief a coding agent can implement."""
    return download(exports.design_pack_file(session, project_id=project_id))


@router.get("/projects/{project_id}/exports/spec-kit.zip", response_class=Response)
def spec_kit(project_id: PathId, session: SessionDep, user: CurrentUser) -> Response:
    """A zip of specs/001-NAME/spec.md and plan.md, for spec-driven tools."""
    return download(exports.spec_kit_zip(session, project_id=project_id))


@router.get("/projects/{project_id}/exports/adr.zip", response_class=Response)
def decision_records(project_id: PathId, session: SessionDep, user: CurrentUser) -> Response:
    """A zip of MADR decision records, NNNN-slug.md, one per current decision."""
    return download(exports.adr_zip(session, project_id=project_id))


@router.get("/projects/{project_id}/exports/report.html", response_class=Response)
def review_report(project_id: PathId, session: SessionDep, user: CurrentUser) -> Response:
    """A print-friendly HTML review report."""
    return download(exports.review_report(session, project_id=project_id), inline=True)


@router.get("/projects/{project_id}/exports/checklist.csv", response_class=Response)
def checklist_csv(project_id: PathId, session: SessionDep, user: CurrentUser) -> Response:
    """The checklist as CSV, one row per item with its current decision."""
    return download(exports.checklist_csv(session, project_id=project_id))
