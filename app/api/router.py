from fastapi import APIRouter

from app.api import debates, decisions, generations, meetings, projects, users

api_router = APIRouter(prefix="/api/v1")
for module in (projects, decisions, generations, users, debates, meetings):
    api_router.include_router(module.router)
