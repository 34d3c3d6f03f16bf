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
    users,
)

api_router = APIRouter(prefix="/api/v1")
modules = (projects, decisions, generations, users, debates, meetings, templates, exports)
for module in (*modules, backup, drafts):
    api_router.include_router(module.router)
