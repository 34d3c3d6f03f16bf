"""Fixtures for the after-the-gate features: an app whose model is the scripted server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


@pytest.fixture
def model_app(model_settings: Settings) -> FastAPI:
    """The app with the scripted model configured, on the same database as ``app``."""
    return create_app(model_settings)


@pytest.fixture
def model_client(model_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(model_app) as test_client:
        yield test_client
