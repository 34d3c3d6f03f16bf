from fastapi import APIRouter

from app.api import (
    backup,
    debates,
    decisions,
    drafts,
    exports,
    generations,
    meetings,
    projects,
    templates,
    tokens,
    users,
)
from app.problems import API_PROBLEMS

# The problem+json answers are declared once here, so every route documents them.
api_router = APIRouter(prefix="/api/v1", responses=API_PROBLEMS)
modules = (projects, decisions, generations, users, debates, meetings, templates, exports)
for module in (*modules, tokens, backup, drafts):
    api_router.include_router(module.router)
