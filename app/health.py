from fastapi import APIRouter
from sqlalchemy import text

from app.deps import SessionDep
from app.problems import problem_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", responses=problem_responses(503))
def healthz(session: SessionDep) -> dict[str, str]:
    """200 once the database answers; 503 problem+json while it does not."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
