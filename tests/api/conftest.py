from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor


@pytest.fixture
def project(client: TestClient, member: Actor) -> dict[str, Any]:
    """A fresh project created by the member, with its default checklist."""
    return factories.create_project(client, member)
