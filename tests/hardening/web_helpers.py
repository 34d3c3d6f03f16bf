"""Signing in through the login form and reading what the pages hand a browser."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from app.config import normalise_database_url
from app.db import Base

PASSWORD = "correct horse battery"
COOKIE = "designgate_session"


def page_routes(app: FastAPI, method: str) -> dict[str, APIRoute]:
    """The pages' routes (every route outside the API) that answer ``method``, by path."""
    return {
        str(context.path): context.original_route
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and not str(context.path).startswith("/api/")
        and method in (context.methods or set())
    }


def token_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the new session's CSRF token."""
    token = token_in(client.get("/login").text)
    form = {"email": email, "password": password, "csrf_token": token}
    response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return token_in(client.get("/").text)


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused request wrote nothing."""
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            return {
                table.name: sorted(
                    (tuple(row) for row in connection.execute(select(table))), key=repr
                )
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()
