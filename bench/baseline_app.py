"""The baselines every figure is divided by: a bare JSON endpoint and a one-row ORM select,
served by the same uvicorn, with the same worker count and the same database."""

from fastapi import FastAPI
from sqlalchemy import select

from app.config import get_settings
from app.db import Database
from app.models import Project


def create_baseline_app() -> FastAPI:
    app = FastAPI()
    db = Database(get_settings())

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/one-row")
    def one_row() -> dict[str, object]:
        with db.reader() as session:
            project = session.scalars(select(Project).limit(1)).one()
            return {"id": project.id, "name": project.name}

    return app
