"""Tokens, cost and timings per message; totals per project; the token budget."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import llm as app_llm
from app.config import Settings
from app.main import create_app
from tests import factories
from tests.conftest import Actor
from tests.debates.conftest import JUDGE, MODEL
from tests.debates.helpers import last_reply, models_view, say, start_thread
from tests.llm_server import Reply, ScriptedLLM

KNOWN_MODEL = "openai/gpt-4o-mini"  # in litellm's cost map, reached at the scripted server


def test_each_reply_stores_tokens_timings_and_no_cost_for_an_unknown_model(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(Reply(text="Two designs.", prompt_tokens=120, completion_tokens=40))
    say(client, member, blind["id"], "Propose designs.")
    reply = last_reply(client, member, blind["id"])
    assert (reply["tokens_in"], reply["tokens_out"]) == (120, 40)
    assert reply["cost"] is None
    assert reply["first_token_ms"] is not None
    assert reply["latency_ms"] >= reply["first_token_ms"]
    assert llm.requests[0]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("settings_overrides", [{"models": [KNOWN_MODEL]}], ids=["known"])
def test_cost_comes_from_litellm_for_a_model_it_knows(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(Reply(text="Two designs.", prompt_tokens=1000, completion_tokens=1000))
    say(client, member, blind["id"], "Propose designs.")
    reply = last_reply(client, member, blind["id"])
    assert reply["cost"] is not None
    assert reply["cost"] > 0
    usage = models_view(client, member, project["id"])["usage"]
    assert usage["cost"] == reply["cost"]


def test_project_totals_add_replies_and_judge_calls(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member, blind_first=False)
    opened = start_thread(client, member, project["id"], "open")
    llm.script_for(MODEL, Reply(text="Keep it.", prompt_tokens=10, completion_tokens=5))
    llm.script_for(MODEL, Reply(text="Fine, drop it.", prompt_tokens=20, completion_tokens=6))
    verdict = {"position_changed": True, "new_argument": False, "explanation": "x"}
    llm.script_for(JUDGE, Reply(text=json.dumps(verdict), prompt_tokens=30, completion_tokens=7))
    say(client, member, opened["id"], "Keep the cache?")
    say(client, member, opened["id"], "Drop it.", pushback=True)
    view = models_view(client, member, project["id"])
    (row,) = view["models"]
    assert (row["replies"], row["tokens_in"], row["tokens_out"]) == (2, 30, 11)
    usage = view["usage"]
    assert (usage["tokens_in"], usage["tokens_out"]) == (30, 11)
    assert (usage["judge_tokens_in"], usage["judge_tokens_out"]) == (30, 7)
    assert usage["tokens_used"] == 78
    same = client.get(f"/api/v1/projects/{project['id']}/usage", headers=member.headers)
    assert same.json() == usage


def test_errors_are_counted_per_model(client: TestClient, member: Actor, llm: ScriptedLLM) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(Reply(status=401), "Designs.")
    say(client, member, blind["id"], "Propose designs.")
    say(client, member, blind["id"], "Again.")
    (row,) = models_view(client, member, project["id"])["models"]
    assert (row["replies"], row["errors"], row["complete"]) == (2, 1, 1)


def test_a_spent_token_budget_refuses_further_calls_with_a_clear_message(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member, token_budget=50)
    assert project["token_budget"] == 50
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(Reply(text="Designs.", prompt_tokens=40, completion_tokens=20))
    say(client, member, blind["id"], "Propose designs.")
    refused = client.post(
        f"/api/v1/threads/{blind['id']}/messages",
        json={"content": "More."},
        headers=member.headers,
    )
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"] == "urn:designgate:problem:token-budget-spent"
    assert "60 of its 50-token budget" in problem["detail"]
    assert len(llm.requests) == 1
    usage = client.get(f"/api/v1/projects/{project['id']}/usage", headers=member.headers).json()
    assert (usage["tokens_used"], usage["tokens_remaining"]) == (60, 0)


def test_the_budget_is_set_and_lifted_with_patch(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    url = f"/api/v1/projects/{project['id']}"
    limited = client.patch(
        url, json={"version": project["version"], "token_budget": 0}, headers=member.headers
    )
    assert limited.status_code == 200
    assert limited.json()["token_budget"] == 0
    blind = start_thread(client, member, project["id"], "blind")
    post = {"content": "Propose designs."}
    refused = client.post(
        f"/api/v1/threads/{blind['id']}/messages", json=post, headers=member.headers
    )
    assert refused.status_code == 409
    lifted = client.patch(
        url,
        json={"version": limited.json()["version"], "token_budget": None},
        headers=member.headers,
    )
    assert lifted.json()["token_budget"] is None
    # Lifting the budget is not a design change: no decision goes stale.
    assert lifted.json()["design_version"] == project["design_version"]
    llm.script("Designs.")
    say(client, member, blind["id"], "Propose designs.")
    assert len(llm.requests) == 1


def test_no_model_configured_is_a_clear_503(
    settings: Settings, member: Actor, llm: ScriptedLLM
) -> None:
    unset = settings.model_copy(update={"model": None, "models": []})
    with TestClient(create_app(unset)) as unconfigured:
        project = factories.create_project(unconfigured, member)
        blind = start_thread(unconfigured, member, project["id"], "blind")
        response = unconfigured.post(
            f"/api/v1/threads/{blind['id']}/messages",
            json={"content": "Propose designs."},
            headers=member.headers,
        )
    assert response.status_code == 503
    assert "DESIGNGATE_MODEL" in response.json()["detail"]


LONG_TEXT = "Design one: a queue consumer that writes each order once. " * 4


def _litellm_count(model: str, prompt: list[dict[str, Any]], text: str) -> tuple[int, int]:
    """litellm's estimate of a streamed reply whose provider reports no usage."""
    litellm = app_llm._litellm()
    tokens_in = litellm.token_counter(model=model, messages=prompt)
    tokens_out = litellm.token_counter(model=model, text=text, count_response_tokens=True)
    return tokens_in, tokens_out


@pytest.mark.parametrize(
    ("settings_overrides", "answer", "kind"),
    [
        ({}, Reply(text=LONG_TEXT, finish_reason="length"), "cut_off"),
        ({}, Reply(text=LONG_TEXT, finish_reason="content_filter"), "cut_off"),
        ({}, Reply(text=" "), "empty"),
        ({"llm_max_reply_chars": 45}, Reply(text=LONG_TEXT * 20, chunk_size=10), "too_long"),
        ({}, Reply(text=LONG_TEXT, chunk_size=10, cut_after_chunks=3), "unavailable"),
    ],
    ids=["max-tokens", "content-filter", "empty", "too-long", "broke-off-mid-stream"],
)
def test_a_failed_reply_stores_and_counts_the_tokens_it_was_billed(
    client: TestClient, member: Actor, llm: ScriptedLLM, answer: Reply, kind: str
) -> None:
    """The provider bills a reply it cut off as any other: its tokens were stored on no
    reply and counted against no budget. A stream that ended before the provider's usage
    report is counted as litellm counts a whole reply whose provider reports none."""
    answer.prompt_tokens, answer.completion_tokens = 400, 90
    project = factories.create_project(client, member, token_budget=450)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(answer)
    say(client, member, blind["id"], "Propose designs.")
    reply = last_reply(client, member, blind["id"])
    assert (reply["status"], reply["error_kind"]) == ("error", kind)
    if kind in ("too_long", "unavailable"):  # no usage report came
        expected = _litellm_count(MODEL, reply["prompt"], reply["content"])
        assert expected[1] > 0
    else:
        expected = (400, 90)
    assert (reply["tokens_in"], reply["tokens_out"]) == expected

    usage = client.get(f"/api/v1/projects/{project['id']}/usage", headers=member.headers).json()
    assert usage["tokens_used"] == sum(expected)
    (row,) = models_view(client, member, project["id"])["models"]
    assert (row["tokens_in"], row["tokens_out"]) == expected
    if sum(expected) >= 450:
        again = {"content": "Again."}
        refused = client.post(
            f"/api/v1/threads/{blind['id']}/messages", json=again, headers=member.headers
        )
        assert refused.status_code == 409


@pytest.mark.parametrize(
    "settings_overrides", [{"fallback_models": ["openai/fallback-model"]}], ids=["with-fallback"]
)
def test_tokens_billed_for_an_attempt_that_failed_count_with_the_reply_that_followed(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script_for(MODEL, Reply(text="", prompt_tokens=100, completion_tokens=1))
    llm.script_for("openai/fallback-model", Reply(text="Designs.", prompt_tokens=100))
    say(client, member, blind["id"], "Propose designs.")
    reply = last_reply(client, member, blind["id"])
    assert (reply["status"], reply["model"]) == ("complete", "openai/fallback-model")
    assert (reply["tokens_in"], reply["tokens_out"]) == (200, 8)
