from fastapi import APIRouter

from app.api import debates, decisions, generations, projects, tokens, users
from app.problems import API_PROBLEMS

# The problem+json answers are declared once here, so every route documents them.
api_router = APIRouter(prefix="/api/v1", responses=API_PROBLEMS)
for module in (projects, decisions, generations, users, debates, tokens):
    api_router.include_router(module.router)
