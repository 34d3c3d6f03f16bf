from fastapi import APIRouter

from app.api.params import PathId
from app.deps import CurrentUser, SessionDep, Writer
from app.schemas.checklist import (
    DecisionHistoryRead,
    DecisionRead,
    DecisionWrite,
    decision_read,
)
from app.services import decisions, projects

router = APIRouter(tags=["decisions"])


@router.put("/checklist-items/{item_id}/decision")
def record_decision(
    item_id: PathId, body: DecisionWrite, session: SessionDep, user: Writer
) -> DecisionRead:
    """Record a new revision of the item's decision; send the revision you read as `version`."""
    entry = decisions.record_decision(session, item_id=item_id, data=body, actor=user)
    assert entry.decision is not None
    return decision_read(entry.decision, stale=entry.stale)


@router.get("/checklist-items/{item_id}/decisions")
def decision_history(
    item_id: PathId, session: SessionDep, user: CurrentUser
) -> DecisionHistoryRead:
    """Every revision of the item's decision, newest first."""
    item, revisions = decisions.history(session, item_id=item_id)
    project = projects.get_project(session, item.project_id)
    return DecisionHistoryRead(
        item_id=item.id,
        revisions=[decision_read(d, stale=decisions.is_stale(d, project)) for d in revisions],
    )
