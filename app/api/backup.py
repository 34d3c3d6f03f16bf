from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.params import PathId
from app.deps import Admin, CurrentUser, SessionDep, TemplatesDep, admin_before_body
from app.schemas.backup import BackupDocument, ImportSummary
from app.services import backup

router = APIRouter(tags=["backup"])

# Backups outgrow the general body limit; larger ones go through `designgate import`.
MAX_IMPORT_BYTES = 64 * 1024 * 1024
_BACKUP_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"title": "BackupDocument", "type": "object"}}},
    }
}


async def _raw_body(request: Request) -> bytes:
    """The body as sent, so a truncated file gets the same clear refusal as on the CLI."""
    return await request.body()


def _json_download(document: BackupDocument, filename: str) -> Response:
    return Response(
        document.model_dump_json(indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/projects/{project_id}/export", response_model=BackupDocument)
def export_project(project_id: PathId, session: SessionDep, user: CurrentUser) -> Response:
    """A backup of one project and the users it references (no passwords, no tokens)."""
    document = backup.export_backup(session, project_id=project_id)
    return _json_download(document, f"designgate-project-{project_id}.json")


@router.get("/export", response_model=BackupDocument)
def export_everything(session: SessionDep, user: Admin) -> Response:
    """A backup of every project, user, template and draft (admins only)."""
    return _json_download(backup.export_backup(session), "designgate-backup.json")


@router.post(
    "/import",
    max_body_size=MAX_IMPORT_BYTES,
    openapi_extra=_BACKUP_BODY,
    # Before the body: dependencies run in this order.
    dependencies=[Depends(admin_before_body)],
)
def import_backup(
    raw: Annotated[bytes, Depends(_raw_body)],
    session: SessionDep,
    user: Admin,
    catalog: TemplatesDep,
) -> ImportSummary:
    """Restore a backup as new rows in one transaction; a bad file writes nothing (admins only)."""
    return backup.import_backup(session, raw=raw, actor=user, catalog=catalog)
