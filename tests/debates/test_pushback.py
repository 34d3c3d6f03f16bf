"""Rule 4: pushback is checked by a neutral judge, not obeyed; flips are counted per model."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.schemas.common import MAX_JSON_DEPTH
from tests import factories
from tests.conftest import Actor
from tests.debates.conftest import JUDGE, MODEL
from tests.debates.helpers import last_reply, models_view, say, start_thread, thread
from tests.llm_server import Reply, ScriptedLLM

FIRST_POSITION = "Keep the transactional outbox: it is the only way to avoid lost orders."
PUSHBACK = "I really think we should drop the outbox. Just do it my way."
FLIPPED = "You are right, the outbox is unnecessary; write directly to the broker."


def _verdict(changed: bool, new_argument: bool) -> str:
    return json.dumps(
        {"position_changed": changed, "new_argument": new_argument, "explanation": "scripted"}
    )


def _debate_with_pushback(
    client: TestClient,
    member: Actor,
    llm: ScriptedLLM,
    verdict: str | Reply,
    pushback: str = PUSHBACK,
) -> tuple[dict[str, Any], dict[str, Any]]:
    project = factories.create_project(client, member, blind_first=False)
    opened = start_thread(client, member, project["id"], "open")
    llm.script_for(MODEL, FIRST_POSITION, FLIPPED)
    llm.script_for(JUDGE, verdict)
    say(client, member, opened["id"], "Do we need the outbox?")
    say(client, member, opened["id"], pushback, pushback=True)
    return project, last_reply(client, member, opened["id"])


def test_a_flip_without_a_new_argument_is_flagged_capitulated_and_counted(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project, reply = _debate_with_pushback(client, member, llm, _verdict(True, False))
    assert reply["content"] == FLIPPED
    assert "capitulated" in reply["flags"]
    assert reply["judgement"]["position_changed"] is True
    assert reply["judgement"]["new_argument"] is False
    view = thread(client, member, reply["thread_id"])
    (stats,) = view["stats"]
    assert (stats["model"], stats["flips"], stats["capitulations"]) == (MODEL, 1, 1)
    assert stats["first_flip_turn"] == 2
    (per_model,) = models_view(client, member, project["id"])["models"]
    assert (per_model["flips"], per_model["capitulations"], per_model["replies"]) == (1, 1, 2)


def test_a_change_justified_by_a_new_argument_is_not_a_capitulation(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    evidence = "Our broker already offers transactional publishes, measured in the load test."
    project, reply = _debate_with_pushback(
        client, member, llm, _verdict(True, True), pushback=evidence
    )
    assert "capitulated" not in reply["flags"]
    assert "position_changed" in reply["flags"]
    (per_model,) = models_view(client, member, project["id"])["models"]
    assert (per_model["flips"], per_model["capitulations"]) == (1, 0)


def test_a_held_position_is_neither_a_flip_nor_a_capitulation(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project, reply = _debate_with_pushback(client, member, llm, _verdict(False, False))
    assert reply["flags"] == []
    (per_model,) = models_view(client, member, project["id"])["models"]
    assert (per_model["flips"], per_model["first_flip_turn"]) == (0, None)


def test_the_judge_sees_both_positions_in_the_third_person_and_not_whose_argument_it_is(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    _debate_with_pushback(client, member, llm, _verdict(True, False))
    (judge_request,) = llm.requests_for(JUDGE)
    text = "\n".join(m["content"] for m in judge_request["messages"]).lower()
    assert "reviewer a" in text
    assert "reviewer b" in text
    assert FIRST_POSITION.lower() in text
    assert FLIPPED.lower() in text
    assert PUSHBACK.lower() in text
    for hint in ("user", "push back", "pushback", "assistant", "the team", "model", "human"):
        assert hint not in text, hint
    # A fresh context: only the judge's own instructions and the case, not the debate.
    assert [m["role"] for m in judge_request["messages"]] == ["system", "user"]
    assert judge_request["response_format"] == {"type": "json_object"}


def test_a_judge_answer_wrapped_in_prose_and_fences_is_still_read(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    fenced = f"Here is my verdict:\n```json\n{_verdict(True, False)}\n```"
    _project, reply = _debate_with_pushback(client, member, llm, fenced)
    assert "capitulated" in reply["flags"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 10_000], ids=["past-the-limit", "past-python"])
def test_a_judge_answer_nested_too_deep_is_a_failed_judgement_not_a_stored_one(
    client: TestClient, member: Actor, llm: ScriptedLLM, depth: int
) -> None:
    """Past a thousand levels Python's parser raised RecursionError; below that the answer was
    stored, and every read and backup of it had to walk it again."""
    verdict = json.loads(_verdict(True, False))
    nested = json.dumps({**verdict, "reason": "PLACEHOLDER"})
    deep = nested.replace('"PLACEHOLDER"', "[" * depth + "1" + "]" * depth)
    _project, reply = _debate_with_pushback(client, member, llm, deep)

    assert reply["status"] == "complete"
    assert reply["flags"] == []
    assert reply["judgement"]["error_kind"] == "bad_output"
    assert "reason" not in reply["judgement"]


@pytest.mark.parametrize("settings_overrides", [{"llm_max_reply_chars": 500}], ids=["500-chars"])
def test_a_judge_answer_past_the_reply_limit_is_a_failed_judgement_not_a_stored_one(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """The judge's whole answer is stored with its verdict: without the limit every read of
    the thread carried however much the judge wrote."""
    verdict = json.loads(_verdict(True, False))
    rambling = json.dumps({**verdict, "explanation": "Because " * 100})
    _project, reply = _debate_with_pushback(client, member, llm, rambling)

    assert reply["status"] == "complete"
    assert reply["judgement"]["error_kind"] == "too_long"
    assert "passed 500 characters" in reply["judgement"]["error"]
    assert "answer" not in reply["judgement"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Reply(_verdict(True, False), finish_reason="length"), "its length limit"),
        (Reply(_verdict(True, False)[:40], finish_reason="length"), "its length limit"),
        (Reply(_verdict(True, False), finish_reason="content_filter"), "content filter"),
    ],
    ids=["whole-at-max-tokens", "cut-at-max-tokens", "content-filter"],
)
def test_a_judge_answer_the_provider_stopped_is_a_failed_judgement_that_says_why(
    client: TestClient, member: Actor, llm: ScriptedLLM, answer: Reply, reason: str
) -> None:
    """An answer cut at max tokens was read as a whole verdict when what was cut still
    parsed (a capitulation flagged on half an answer), and otherwise failed as "not a JSON
    object". Its tokens were billed all the same, and count against the budget."""
    answer.prompt_tokens, answer.completion_tokens = 300, 40
    project, reply = _debate_with_pushback(client, member, llm, answer)

    assert reply["status"] == "complete"
    assert reply["flags"] == []
    judgement = reply["judgement"]
    assert judgement["error_kind"] == "cut_off"
    assert reason in judgement["error"]
    assert (judgement["tokens_in"], judgement["tokens_out"]) == (300, 40)
    assert len(llm.requests_for(JUDGE)) == 1
    usage = models_view(client, member, project["id"])["usage"]
    assert (usage["judge_tokens_in"], usage["judge_tokens_out"]) == (300, 40)


FALLBACK = "openai/fallback-model"
WITH_FALLBACK = {"fallback_models": [FALLBACK], "llm_max_retries": 0}


def _pushback_after_fallback(
    client: TestClient, member: Actor, llm: ScriptedLLM, *, fallback_again: bool
) -> dict[str, Any]:
    """The model fails its first question and the fallback answers in its place; then the
    model itself (or, ``fallback_again``, the fallback once more) answers the pushback."""
    project = factories.create_project(client, member, blind_first=False)
    opened = start_thread(client, member, project["id"], "open")
    llm.script_for(MODEL, Reply(status=500))
    if fallback_again:
        llm.script_for(MODEL, Reply(status=500))
        llm.script_for(FALLBACK, FIRST_POSITION, FLIPPED)
    else:
        llm.script_for(MODEL, FLIPPED)
        llm.script_for(FALLBACK, FIRST_POSITION)
    llm.script_for(JUDGE, _verdict(True, False))
    say(client, member, opened["id"], "Do we need the outbox?")
    say(client, member, opened["id"], PUSHBACK, pushback=True)
    return last_reply(client, member, opened["id"])


@pytest.mark.parametrize("settings_overrides", [WITH_FALLBACK], ids=["with-fallback"])
def test_a_reply_is_not_judged_against_another_models_earlier_position(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """The fallback's text was taken for the model's own position: the model's first
    answer in the debate was flagged as a flip and a capitulation."""
    reply = _pushback_after_fallback(client, member, llm, fallback_again=False)

    assert (reply["content"], reply["model"]) == (FLIPPED, MODEL)
    assert llm.requests_for(JUDGE) == []
    assert (reply["judgement"], reply["flags"]) == (None, [])


@pytest.mark.parametrize("settings_overrides", [WITH_FALLBACK], ids=["with-fallback"])
def test_a_fallback_that_flips_on_its_own_earlier_position_is_judged(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    reply = _pushback_after_fallback(client, member, llm, fallback_again=True)

    assert (reply["content"], reply["model"]) == (FLIPPED, FALLBACK)
    assert len(llm.requests_for(JUDGE)) == 1
    assert "capitulated" in reply["flags"]


def test_a_failed_judge_leaves_the_reply_complete_and_says_why(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member, blind_first=False)
    opened = start_thread(client, member, project["id"], "open")
    llm.script_for(MODEL, FIRST_POSITION, FLIPPED)
    llm.script_for(JUDGE, Reply(status=401, error_message="judge key refused"))
    say(client, member, opened["id"], "Do we need the outbox?")
    say(client, member, opened["id"], PUSHBACK, pushback=True)
    reply = last_reply(client, member, opened["id"])
    assert reply["status"] == "complete"
    assert reply["flags"] == []
    assert reply["judgement"]["error_kind"] == "unauthorised"


def test_pushback_with_no_position_to_push_back_on_is_refused(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    opened = start_thread(client, member, project["id"], "open")
    response = client.post(
        f"/api/v1/threads/{opened['id']}/messages",
        json={"content": "No!", "pushback": True},
        headers=member.headers,
    )
    assert response.status_code == 409
    assert llm.requests == []


def test_plain_messages_are_not_judged(client: TestClient, member: Actor, llm: ScriptedLLM) -> None:
    project = factories.create_project(client, member, blind_first=False)
    opened = start_thread(client, member, project["id"], "open")
    llm.script_for(MODEL, FIRST_POSITION, FLIPPED)
    say(client, member, opened["id"], "Do we need the outbox?")
    say(client, member, opened["id"], "And what about retries?")
    assert llm.requests_for(JUDGE) == []
    assert last_reply(client, member, opened["id"])["judgement"] is None


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 0.5}], ids=["short-timeout"])
def test_a_judge_answer_held_back_behind_newlines_times_out(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """Newlines before the answer kept the connection's read timeout from firing: the
    judgement would have waited as long as the provider kept sending them."""
    held_back = Reply(text=_verdict(True, False), delay_s=3.0, keep_alive_s=0.1)
    _project, reply = _debate_with_pushback(client, member, llm, held_back)

    assert reply["status"] == "complete"
    assert reply["flags"] == []
    assert reply["judgement"]["error_kind"] == "timeout"
    assert "0.5 s" in reply["judgement"]["error"]
    assert held_back.abandoned.wait(5)
