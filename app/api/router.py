from fastapi import FastAPI

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

API_PREFIX = "/api/v1"
modules = (projects, decisions, generations, users, debates, meetings, templates, exports)


def install(app: FastAPI) -> None:
    """Every JSON router under /api/v1, with the problem+json answers declared once here so
    every route documents them. Each is included in the app itself: a router nested in a
    router is one more level every request's route matching walks through."""
    app.state.checklists = projects.KeptChecklists()
    for module in (*modules, tokens, backup, drafts):
        app.include_router(module.router, prefix=API_PREFIX, responses=API_PROBLEMS)
