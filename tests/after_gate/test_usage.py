"""What code generations and drafts cost: each stores the tokens of every attempt behind it,
the project's usage shows them on lines of their own, and the debate budget leaves them out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests import factories
from tests.after_gate.test_drafts import MODEL_REPLY, REQUEST
from tests.after_gate.test_generation import CODE_V1, _generate
from tests.conftest import Actor, make_settings
from tests.debates.helpers import last_reply, say, start_thread
from tests.llm_server import Reply, ScriptedLLM

MODEL, FALLBACK = "openai/scripted-model", "openai/fallback-model"
BUDGET = 60


@pytest.fixture
def model_settings(model_settings: Settings) -> Settings:
    """The scripted model with a fallback, and no waiting between retries."""
    values = {
        **model_settings.model_dump(),
        "fallback_models": [FALLBACK],
        "llm_backoff_base_s": 0.0,
        "llm_backoff_max_s": 0.0,
    }
    return make_settings(**values)


def _usage(client: TestClient, actor: Actor, project_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/projects/{project_id}/usage", headers=actor.headers)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()
    return usage


def test_a_generation_stores_every_attempts_tokens_outside_the_debate_budget(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member, token_budget=BUDGET)
    factories.decide_all(model_client, member, project["id"])
    # An empty answer is billed, then the fallback model writes the code.
    llm.script_for(MODEL, Reply(text="", prompt_tokens=300, completion_tokens=1))
    llm.script_for(FALLBACK, Reply(CODE_V1, prompt_tokens=300, completion_tokens=90))
    generation = _generate(model_client, member, project["id"])

    assert (generation["status"], generation["model"]) == ("complete", FALLBACK)
    assert (generation["tokens_in"], generation["tokens_out"]) == (600, 91)
    assert generation["cost"] is None  # litellm has no price for the scripted model
    assert [(a["model"], a["kind"]) for a in generation["attempts"]] == [(MODEL, "empty")]
    listed = model_client.get(
        f"/api/v1/projects/{project['id']}/generations", headers=member.headers
    ).json()
    assert listed[0]["tokens_in"] == 600

    usage = _usage(model_client, member, project["id"])
    assert usage["generations"] == {"tokens_in": 600, "tokens_out": 91, "cost": None}
    assert (usage["tokens_used"], usage["tokens_remaining"]) == (0, BUDGET)

    # Far over the budget in generations, the debate still has all of it.
    blind = start_thread(model_client, member, project["id"], "blind")
    llm.script(Reply("Designs.", prompt_tokens=20, completion_tokens=5))
    say(model_client, member, blind["id"], "Propose designs.")
    assert last_reply(model_client, member, blind["id"])["status"] == "complete"
    usage = _usage(model_client, member, project["id"])
    assert (usage["tokens_used"], usage["tokens_remaining"]) == (25, BUDGET - 25)
    assert usage["generations"]["tokens_in"] == 600
    models = model_client.get(f"/api/v1/projects/{project['id']}/models", headers=member.headers)
    assert models.json()["usage"] == usage


def test_a_draft_stores_every_attempts_tokens_and_its_project_shows_them(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script_for(MODEL, Reply(text="", prompt_tokens=200, completion_tokens=1))
    llm.script_for(
        FALLBACK, Reply(json.dumps(MODEL_REPLY), prompt_tokens=200, completion_tokens=80)
    )
    started = model_client.post("/api/v1/drafts", json={"request": REQUEST}, headers=member.headers)
    assert started.status_code == 201, started.text
    url = f"/api/v1/drafts/{started.json()['id']}"
    draft = model_client.get(url, headers=member.headers).json()

    assert (draft["status"], draft["model"]) == ("ready", FALLBACK)
    assert (draft["tokens_in"], draft["tokens_out"], draft["cost"]) == (400, 81, None)
    assert [(a["model"], a["kind"]) for a in draft["attempts"]] == [(MODEL, "bad_output")]

    made = model_client.post(f"{url}/project", json={}, headers=member.headers)
    assert made.status_code == 201, made.text
    usage = _usage(model_client, member, made.json()["id"])
    assert usage["drafts"] == {"tokens_in": 400, "tokens_out": 81, "cost": None}
    assert usage["generations"] == {"tokens_in": 0, "tokens_out": 0, "cost": None}
    assert usage["tokens_used"] == 0
