"""Code generation after the gate: refused, allowed, streamed, outdated and compared."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.after_gate.sse import events
from tests.conftest import Actor
from tests.hardening.web_helpers import sign_in
from tests.llm_server import Reply, ScriptedLLM

CODE_V1 = "def consume(message):\n    save(message)\n    ack(message)\n"
CODE_V2 = (
    "def consume(message):\n    with transaction():\n        save(message)\n    ack(message)\n"
)


def _generate(client: TestClient, actor: Actor, project_id: int) -> dict[str, Any]:
    """Start a generation; the test client returns once its background run has finished."""
    response = client.post(
        f"/api/v1/projects/{project_id}/generations", json={}, headers=actor.headers
    )
    assert response.status_code == 202, response.text
    return _get(client, actor, response.json()["id"])


def _get(client: TestClient, actor: Actor, generation_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/generations/{generation_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _list(client: TestClient, actor: Actor, project_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/projects/{project_id}/generations", headers=actor.headers)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_generation_is_refused_while_the_gate_is_closed_then_allowed(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member)
    refused = model_client.post(
        f"/api/v1/projects/{project['id']}/generations", json={}, headers=member.headers
    )
    assert refused.status_code == 409
    assert len(refused.json()["missing"]) == 6
    assert llm.requests == []

    decided = factories.decide_all(model_client, member, project["id"])
    llm.script(Reply(CODE_V1))
    generation = _generate(model_client, member, project["id"])

    assert generation["status"] == "complete"
    assert generation["content"] == CODE_V1
    assert generation["outdated"] is False
    assert {b["decision_id"] for b in generation["based_on"]} == {d["id"] for d in decided}


def test_the_generation_prompt_is_the_design_pack_with_constraints_and_rejections(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member)
    decided = factories.decide_all(model_client, member, project["id"])
    llm.script(Reply(CODE_V1))
    _generate(model_client, member, project["id"])

    (prompt,) = llm.prompts_text()
    assert "Every decision below is a hard constraint" in prompt
    assert factories.ARCHITECTURE in prompt
    for decision in decided:
        assert decision["summary"] in prompt
        assert decision["rationale"] in prompt
        for alternative in decision["alternatives"]:
            assert f"Do not: {alternative}" in prompt


def test_generation_text_is_streamed_over_server_sent_events(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member)
    factories.decide_all(model_client, member, project["id"])
    text = "".join(f"line {n}: handle the failure\n" for n in range(40))
    llm.script(Reply(text, chunk_size=20, delay_s=0.05))
    poster = threading.Thread(target=_generate, args=(model_client, member, project["id"]))
    poster.start()
    try:
        generation_id = _wait_for_first_generation(model_client, member, project["id"])
        received = _read_stream(model_client, member, generation_id)
    finally:
        poster.join()

    kinds = [kind for kind, _data in received]
    assert kinds[0] == "content"
    assert kinds[-1] == "done"
    assert received[-1][1]["status"] == "complete"
    assert "delta" in kinds, "the text arrived only as a whole, not as it was written"
    streamed = "".join(data["text"] for kind, data in received if kind in {"content", "delta"})
    assert streamed == text


def _wait_for_first_generation(client: TestClient, actor: Actor, project_id: int) -> int:
    for _attempt in range(500):
        found = _list(client, actor, project_id)
        if found:
            return int(found[0]["id"])
        threading.Event().wait(0.01)
    raise AssertionError("the generation never appeared")


def _read_stream(
    client: TestClient, actor: Actor, generation_id: int
) -> list[tuple[str, dict[str, Any]]]:
    url = f"/api/v1/generations/{generation_id}/events"
    with client.stream("GET", url, headers=actor.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(events(response.iter_lines()))


def test_events_of_a_finished_generation_give_its_text_then_done(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member)
    factories.decide_all(model_client, member, project["id"])
    llm.script(Reply(CODE_V1))
    generation = _generate(model_client, member, project["id"])

    received = _read_stream(model_client, member, generation["id"])

    assert received == [
        ("content", {"text": CODE_V1, "status": "complete"}),
        ("done", {"status": "complete", "error": None}),
    ]


def test_events_of_an_unknown_generation_are_404(client: TestClient, member: Actor) -> None:
    response = client.get("/api/v1/generations/999999/events", headers=member.headers)
    assert response.status_code == 404


def test_a_superseding_decision_marks_earlier_generations_outdated(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member)
    factories.decide_all(model_client, member, project["id"])
    llm.script(Reply(CODE_V1), Reply(CODE_V2))
    first = _generate(model_client, member, project["id"])
    item = factories.checklist(model_client, member, project["id"])[2]
    factories.decide(model_client, member, item, summary="Shed load with a bounded queue")
    second = _generate(model_client, member, project["id"])

    listed = {g["id"]: g for g in _list(model_client, member, project["id"])}
    assert set(listed) == {first["id"], second["id"]}
    assert listed[first["id"]]["outdated"] is True
    (reason,) = listed[first["id"]]["outdated_because"]
    assert (reason["item_id"], reason["reason"]) == (item["id"], "superseded")
    assert listed[second["id"]]["outdated"] is False


def test_a_design_edit_marks_generations_outdated(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member)
    factories.decide_all(model_client, member, project["id"])
    llm.script(Reply(CODE_V1))
    generation = _generate(model_client, member, project["id"])
    edited = model_client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], "architecture": "Two consumers behind a router."},
        headers=member.headers,
    )
    assert edited.status_code == 200, edited.text

    after = _get(model_client, member, generation["id"])
    assert after["outdated"] is True
    assert {r["reason"] for r in after["outdated_because"]} == {"stale"}
    assert len(after["outdated_because"]) == 6


def test_comparing_generations_diffs_their_code_and_decision_bases(
    model_client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(model_client, member)
    factories.decide_all(model_client, member, project["id"])
    llm.script(Reply(CODE_V1), Reply(CODE_V2))
    first = _generate(model_client, member, project["id"])
    item = factories.checklist(model_client, member, project["id"])[0]
    old_summary = item["decision"]["summary"]
    factories.decide(model_client, member, item, summary="Orders belong to the order service")
    second = _generate(model_client, member, project["id"])

    response = model_client.get(
        f"/api/v1/generations/{first['id']}/compare/{second['id']}", headers=member.headers
    )

    assert response.status_code == 200, response.text
    diff = response.json()
    assert f"--- generation-{first['id']}" in diff["content_diff"]
    assert "+    with transaction():" in diff["content_diff"]
    assert f"-  revision 1 (decided): {old_summary}" in diff["basis_diff"]
    assert "+  revision 2 (decided): Orders belong to the order service" in diff["basis_diff"]


@pytest.mark.parametrize("instructions", ["Use asyncio.\x00", "x" * 20_001], ids=["nul", "long"])
def test_the_review_pages_instructions_are_held_to_what_the_api_takes(
    model_client: TestClient, member: Actor, llm: ScriptedLLM, instructions: str
) -> None:
    """The page passed them on unchecked: NUL was a 500 on PostgreSQL, and any length was
    stored and sent to the model."""
    project = factories.create_project(model_client, member)
    factories.decide_all(model_client, member, project["id"])
    headers = {"X-CSRF-Token": sign_in(model_client, member.email)}
    response = model_client.post(
        f"/projects/{project['id']}/generations",
        data={"instructions": instructions},
        headers=headers,
    )

    assert response.status_code == 422, response.text
    assert "Instructions: " in response.text
    assert _list(model_client, member, project["id"]) == []
    assert llm.requests == []
