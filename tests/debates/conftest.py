"""Debate tests run against the scripted model server through real litellm.

Settings can be changed per test with
``@pytest.mark.parametrize("settings_overrides", [{...}], ids=["..."])``.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from tests.conftest import make_settings
from tests.llm_server import ScriptedLLM

MODEL = "openai/scripted-model"
JUDGE = "openai/judge-model"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(
    database_url: str, llm_server: ScriptedLLM, settings_overrides: dict[str, Any]
) -> Settings:
    """The scripted model for debates, a separate judge, and no waiting between retries."""
    values: dict[str, Any] = {
        "model": MODEL,
        "judge_model": JUDGE,
        "llm_api_base": llm_server.api_base,
        "llm_api_key": "test-key",
        "llm_timeout_s": 2.0,
        "llm_warmup": False,
        "llm_backoff_base_s": 0.0,
        "llm_backoff_max_s": 0.0,
    }
    values.update(settings_overrides)
    return make_settings(database_url, **values)
