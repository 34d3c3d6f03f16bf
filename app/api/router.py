from fastapi import APIRouter

from app.api import (
    backup,
    decisions,
    drafts,
    exports,
    generations,
    projects,
    templates,
    users,
)

api_router = APIRouter(prefix="/api/v1")
for module in (projects, decisions, generations, users, templates, exports, backup, drafts):
    api_router.include_router(module.router)
