"""Starting a review from a one-line request: proposals become checklist items only once
the team accepts them, and the model is never asked for code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.config import Settings
from app.db import Database
from app.models import Draft, DraftProposal
from tests import factories
from tests.conftest import Actor, make_settings
from tests.llm_server import Reply, ScriptedLLM

REQUEST = (
    "write me a Node.js script that consumes an order queue from RabbitMQ "
    "and saves the orders to PostgreSQL"
)
PROPOSALS = [
    {
        "category": "load",
        "title": "Connection pooling to PostgreSQL",
        "question": "How many connections may the consumer hold, and what waits when all are busy?",
    },
    {
        "category": "degradation",
        "title": "Network blips to the broker",
        "question": "What happens to unacknowledged orders when the AMQP connection drops?",
    },
    {
        "category": "resilience",
        "title": "Acknowledgement strategy",
        "question": "Is an order acknowledged before or after its row is committed?",
    },
    {
        "category": "mitigation",
        "title": "Malformed messages must not block the queue",
        "question": "Where does a message that cannot be parsed go?",
    },
]
MODEL_REPLY = {
    "name": "Order queue consumer",
    "problem": "Orders published to RabbitMQ must each be stored once in PostgreSQL.",
    "template": "rabbitmq-consumer",
    "proposals": PROPOSALS,
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def model_settings(model_settings: Settings, settings_overrides: dict[str, Any]) -> Settings:
    """The scripted model with no waiting between retries (counts are asserted, not times);
    change more per test with ``@pytest.mark.parametrize("settings_overrides", [...])``."""
    values = {
        **model_settings.model_dump(),
        "llm_backoff_base_s": 0.0,
        "llm_backoff_max_s": 0.0,
        **settings_overrides,
    }
    return make_settings(**values)


def _start(client: TestClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/drafts", json={"request": REQUEST, **fields}, headers=actor.headers
    )
    assert response.status_code == 201, response.text
    draft: dict[str, Any] = client.get(
        f"/api/v1/drafts/{response.json()['id']}", headers=actor.headers
    ).json()
    return draft


def _proposal(
    client: TestClient, actor: Actor, draft: dict[str, Any], index: int, **change: Any
) -> Any:
    proposal_id = draft["proposals"][index]["id"]
    return client.patch(
        f"/api/v1/drafts/{draft['id']}/proposals/{proposal_id}", json=change, headers=actor.headers
    )


def test_a_request_becomes_a_draft_whose_proposals_become_items_only_once_accepted(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script(Reply("```json\n" + json.dumps(MODEL_REPLY) + "\n```"))
    draft = _start(model_client, member)

    assert draft["status"] == "ready"
    assert draft["problem"] == MODEL_REPLY["problem"]
    assert draft["template"] == "rabbitmq-consumer"
    assert [p["status"] for p in draft["proposals"]] == ["pending"] * 4
    assert _proposal(model_client, member, draft, 0, status="accepted").status_code == 200
    edited = _proposal(
        model_client, member, draft, 1, status="accepted", title="Broker connection blips"
    )
    assert edited.status_code == 200, edited.text
    assert _proposal(model_client, member, draft, 2, status="dropped").status_code == 200

    made = model_client.post(
        f"/api/v1/drafts/{draft['id']}/project", json={}, headers=member.headers
    )

    assert made.status_code == 201, made.text
    items = factories.checklist(model_client, member, made.json()["id"])
    custom = [(i["title"], i["category"]) for i in items if i["custom"]]
    assert custom == [
        ("Connection pooling to PostgreSQL", "load"),
        ("Broker connection blips", "degradation"),
    ]
    assert len(items) == 9 + 2  # the template's items, then the accepted proposals only
    assert made.json()["problem"] == MODEL_REPLY["problem"]
    again = model_client.post(
        f"/api/v1/drafts/{draft['id']}/project", json={}, headers=member.headers
    )
    assert again.status_code == 409
    assert _proposal(model_client, member, draft, 3, status="accepted").status_code == 409


def test_the_model_is_asked_for_the_problem_and_never_for_code(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script(Reply(json.dumps(MODEL_REPLY)))
    _start(model_client, member)

    (request,) = llm.requests
    system, user = request["messages"]
    assert request.get("stream") in (None, False)
    assert "Do not write any code" in system["content"]
    assert "no pseudo-code" in system["content"]
    assert REQUEST in user["content"]
    assert '"rabbitmq-consumer"' in user["content"]
    assert "write the code" not in (system["content"] + user["content"]).lower()


def test_without_a_model_the_draft_uses_the_template_alone_and_says_so(
    client: TestClient, member: Actor
) -> None:
    draft = _start(client, member)

    assert draft["status"] == "ready"
    assert draft["proposals"] == []
    assert "No model is configured" in draft["note"]
    assert draft["template"] == "generic-service"
    picked = client.patch(
        f"/api/v1/drafts/{draft['id']}",
        json={"template": "http-api-service"},
        headers=member.headers,
    )
    assert picked.status_code == 200
    made = client.post(f"/api/v1/drafts/{draft['id']}/project", json={}, headers=member.headers)
    assert made.status_code == 201
    assert made.json()["template"] == "http-api-service"
    assert len(factories.checklist(client, member, made.json()["id"])) == 6


def test_a_failed_model_call_leaves_a_usable_draft_that_says_why(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script(Reply(status=500, error_message="overloaded"))
    draft = _start(model_client, member)

    assert draft["status"] == "ready"
    assert draft["proposals"] == []
    assert "could not turn the request into proposals" in draft["note"]
    assert draft["problem"] == REQUEST


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Reply(json.dumps(MODEL_REPLY), finish_reason="length"), "its length limit"),
        (Reply(json.dumps(MODEL_REPLY)[:300], finish_reason="length"), "its length limit"),
        (Reply(json.dumps(MODEL_REPLY), finish_reason="content_filter"), "content filter"),
    ],
    ids=["whole-at-max-tokens", "cut-at-max-tokens", "content-filter"],
)
def test_an_answer_the_provider_stopped_gives_no_proposals_and_says_why(
    model_client: TestClient, member: Actor, llm: ScriptedLLM, answer: Reply, reason: str
) -> None:
    """Cut at max tokens, the proposals that still parsed were offered as the model's whole
    answer; cut mid-object, the draft said the model had not answered with JSON."""
    llm.script(answer, Reply(json.dumps(MODEL_REPLY)))
    draft = _start(model_client, member)

    assert draft["status"] == "ready"
    assert draft["proposals"] == []
    assert "could not turn the request into proposals" in draft["note"]
    assert reason in draft["note"]
    assert [a["kind"] for a in draft["attempts"]] == ["cut_off"]
    assert len(llm.requests) == 1  # not asked again: the same model would stop again


def test_malformed_proposals_and_unknown_templates_are_left_out_and_noted(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    bad = {"category": "vibes", "title": "Feelings", "question": "How does it feel?"}
    llm.script(
        Reply(json.dumps({**MODEL_REPLY, "template": "cobol", "proposals": [bad, *PROPOSALS]}))
    )
    draft = _start(model_client, member)

    assert len(draft["proposals"]) == 4
    assert draft["template"] == "generic-service"
    assert "1 malformed proposal(s) were left out" in draft["note"]
    assert "unknown template 'cobol'" in draft["note"]


def test_nul_characters_in_the_models_reply_are_stored_as_replacement_characters(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """PostgreSQL's text cannot hold NUL: the draft stayed pending, its proposals lost."""
    with_nul = {**MODEL_REPLY, "problem": "Orders\x00 arrive.", "proposals": PROPOSALS[:1]}
    llm.script(Reply(json.dumps(with_nul)))
    draft = _start(model_client, member)

    assert draft["status"] == "ready"
    assert draft["problem"] == "Orders\ufffd arrive."
    assert [p["title"] for p in draft["proposals"]] == [PROPOSALS[0]["title"]]


def test_a_template_the_team_chose_is_kept_over_the_models_suggestion(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script(Reply(json.dumps(MODEL_REPLY)))
    draft = _start(model_client, member, template="kafka-stream-processor")

    assert draft["template"] == "kafka-stream-processor"
    assert len(draft["proposals"]) == 4


def test_the_team_adds_its_own_proposal_and_viewers_cannot(
    client: TestClient, member: Actor, viewer: Actor
) -> None:
    draft = _start(client, member)
    own = {"category": "recovery", "title": "Replay from the dead-letter queue", "question": "How?"}

    added = client.post(f"/api/v1/drafts/{draft['id']}/proposals", json=own, headers=member.headers)
    refused = client.post(
        f"/api/v1/drafts/{draft['id']}/proposals", json=own, headers=viewer.headers
    )

    assert added.status_code == 201
    assert added.json()["proposals"][0]["status"] == "accepted"
    assert refused.status_code == 403


def test_a_problem_statement_longer_than_a_project_takes_is_cut_to_fit_and_noted(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """The draft stored the model's text as it came; making its project then validated it
    as a project's problem, which holds 100,000 characters: a 500, and no project."""
    long_problem = "Orders arrive. " * 7_000  # 105,000 characters
    llm.script(Reply(json.dumps({**MODEL_REPLY, "problem": long_problem})))
    draft = _start(model_client, member)

    assert draft["problem"] == long_problem[:100_000]
    assert "cut to 100000 characters" in draft["note"]
    made = model_client.post(
        f"/api/v1/drafts/{draft['id']}/project", json={}, headers=member.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["problem"] == long_problem[:100_000].strip()


@pytest.mark.parametrize(
    ("stored", "field"),
    [
        ({"name": ""}, "name"),
        ({"problem": "x" * 100_001}, "problem"),
        ({"template": "Not A Key"}, "template"),
    ],
    ids=["empty-name", "long-problem", "malformed-template"],
)
def test_a_draft_holding_what_a_project_cannot_is_a_conflict_naming_it(
    client: TestClient, member: Actor, db: Database, stored: dict[str, str], field: str
) -> None:
    """What a backup may hold, though no request could write it: making the project
    validated it inside the service, a 500."""
    draft = _start(client, member)
    with db.transaction() as session:
        session.execute(update(Draft).where(Draft.id == draft["id"]).values(**stored))
    made = client.post(f"/api/v1/drafts/{draft['id']}/project", json={}, headers=member.headers)

    assert made.status_code == 409, made.text
    assert made.json()["field"] == field
    assert "cannot become a project until it is edited" in made.json()["detail"]
    assert client.get("/api/v1/projects", headers=member.headers).json() == []


def test_an_accepted_proposal_no_checklist_item_could_hold_is_named(
    model_client: TestClient, member: Actor, llm: ScriptedLLM, db: Database
) -> None:
    llm.script(Reply(json.dumps(MODEL_REPLY)))
    draft = _start(model_client, member)
    proposal = draft["proposals"][0]
    assert _proposal(model_client, member, draft, 0, status="accepted").status_code == 200
    with db.transaction() as session:
        session.execute(
            update(DraftProposal).where(DraftProposal.id == proposal["id"]).values(title=" ")
        )
    made = model_client.post(
        f"/api/v1/drafts/{draft['id']}/project", json={}, headers=member.headers
    )

    assert made.status_code == 409, made.text
    assert made.json()["field"] == f"proposals[{proposal['id']}].title"


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (Reply(status=429, headers={"Retry-After": "1"}), "rate_limited"),
        (Reply(status=500), "unavailable"),
    ],
    ids=["rate-limited", "server-error"],
)
def test_a_transient_failure_is_retried_and_the_draft_gets_its_proposals(
    model_client: TestClient, member: Actor, llm: ScriptedLLM, failure: Reply, kind: str
) -> None:
    llm.script(failure, Reply(json.dumps(MODEL_REPLY)))
    draft = _start(model_client, member)

    assert len(llm.requests) == 2
    assert draft["status"] == "ready"
    assert draft["note"] == ""
    assert len(draft["proposals"]) == 4
    # Stored as a reply's are: the failed attempt behind the answer.
    assert [(a["model"], a["kind"]) for a in draft["attempts"]] == [("openai/scripted-model", kind)]


@pytest.mark.parametrize(
    "settings_overrides", [{"llm_breaker_threshold": 1}], ids=["opens-after-one-failure"]
)
def test_an_open_circuit_refuses_a_drafts_call_without_asking_the_model(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script(Reply(status=503, error_message="down"))
    _start(model_client, member)
    assert len(llm.requests) == 1  # the failure opened the circuit; no retry went out

    llm.script(Reply(json.dumps(MODEL_REPLY)))
    draft = _start(model_client, member)

    assert len(llm.requests) == 1
    assert draft["proposals"] == []
    assert "circuit open for openai/scripted-model" in draft["note"]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"fallback_models": ["openai/fallback-model"], "llm_max_retries": 1}],
    ids=["with-fallback"],
)
def test_a_fallback_model_writes_the_proposals_when_the_model_keeps_failing(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script_for("openai/scripted-model", Reply(status=500), Reply(status=503))
    llm.script_for("openai/fallback-model", json.dumps(MODEL_REPLY))
    draft = _start(model_client, member)

    assert len(llm.requests_for("openai/scripted-model")) == 2
    assert len(draft["proposals"]) == 4
    assert draft["model"] == "openai/fallback-model"
    assert [a["kind"] for a in draft["attempts"]] == ["unavailable", "unavailable"]
