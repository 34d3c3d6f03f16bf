"""The app's routes as it routes them, for tests that must cover every write route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from app.main import create_app
from tests.conftest import make_settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every dependency a route runs, however deeply nested."""
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from dependency_calls(sub)


def write_routes(keep: Callable[[str], bool]) -> list[tuple[str, str, Dependant]]:
    """(method, path, dependant) of every write route whose path ``keep`` accepts."""
    app = create_app(make_settings("sqlite:///:memory:"))
    return [
        (method, str(route.path), route.dependant)
        for route in iter_route_contexts(app.routes)
        if route.path and keep(str(route.path))
        for method in sorted((route.methods or set()) & WRITE_METHODS)
    ]
