"""Downloads of the design pack, decision records, report and CSV for signed-in users."""

from collections.abc import Callable

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.api.params import PathId
from app.deps import SessionDep
from app.errors import NotFound
from app.responses import download
from app.services import exports
from app.services.exports import ExportFile
from app.web.deps import WebUser, require_setup_done

router = APIRouter(dependencies=[Depends(require_setup_done)])

Exporter = Callable[..., ExportFile]
EXPORTS: dict[str, tuple[Exporter, bool]] = {
    "design-pack.md": (exports.design_pack_file, False),
    "spec-kit.zip": (exports.spec_kit_zip, False),
    "adr.zip": (exports.adr_zip, False),
    "report.html": (exports.review_report, True),
    "checklist.csv": (exports.checklist_csv, False),
}


@router.get("/projects/{project_id}/exports/{name}", response_class=Response)
def export(project_id: PathId, name: str, session: SessionDep, user: WebUser) -> Response:
    """One of the project's exports, by file name."""
    if name not in EXPORTS:
        raise NotFound(f"There is no export called {name!r}")
    exporter, inline = EXPORTS[name]
    return download(_call(exporter, session, project_id), inline=inline)


def _call(exporter: Exporter, session: Session, project_id: int) -> ExportFile:
    return exporter(session, project_id=project_id)
