"""Rule 5 for model calls: every failure keeps the partial text and says why; the app goes on."""

import json
import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor
from tests.debates.helpers import item_in, last_reply, say, start_thread
from tests.llm_server import Reply, ScriptedLLM

LONG_TEXT = "Design one: a queue consumer that writes each order once. " * 4


def _closed_port_base() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _reply_after(
    client: TestClient, member: Actor, *script: Reply | str, llm: ScriptedLLM
) -> dict[str, Any]:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(*script)
    say(client, member, blind["id"], "Propose designs.")
    return last_reply(client, member, blind["id"])


@pytest.mark.parametrize(
    "settings_overrides", [{"llm_api_base": _closed_port_base()}], ids=["server-down"]
)
def test_a_server_that_is_down_leaves_a_stored_reason(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    reply = _reply_after(client, member, llm=llm)
    assert reply["status"] == "error"
    assert reply["error_kind"] == "unavailable"
    assert "could not be reached" in reply["error"]
    assert reply["content"] == ""
    assert reply["latency_ms"] is not None


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 0.5}], ids=["short-timeout"])
def test_a_timeout_before_the_first_token_leaves_a_stored_reason(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    reply = _reply_after(client, member, Reply(text="late", wait_before_s=1.5), llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "timeout")
    assert "timeout" in reply["error"]
    assert len(llm.requests) == 1  # a timeout is not retried


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 0.5}], ids=["short-timeout"])
def test_a_timeout_mid_reply_keeps_the_partial_text(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    slow = Reply(text=LONG_TEXT, chunk_size=20, delay_s=1.5)
    reply = _reply_after(client, member, slow, llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "timeout")
    assert reply["content"] == LONG_TEXT[:20]
    assert reply["first_token_ms"] is not None


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 0.5}], ids=["short-timeout"])
def test_a_stream_kept_open_without_text_times_out_keeping_the_partial_text(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """Keep-alive comments are bytes, so the connection's read timeout never fires; the
    timeout counts from the last piece of the reply instead."""
    stalled = Reply(text=LONG_TEXT[:60], chunk_size=20, delay_s=2.0, keep_alive_s=0.1)
    reply = _reply_after(client, member, stalled, llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "timeout")
    assert "0.5 s" in reply["error"]
    assert reply["content"] == LONG_TEXT[:20]
    assert len(llm.requests) == 1  # a timeout is not retried
    assert stalled.abandoned.wait(5)  # closed, not left open


@pytest.mark.parametrize("settings_overrides", [{"llm_max_retries": 0}], ids=["no-retries"])
@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limited"), (500, "unavailable"), (503, "unavailable")]
)
def test_provider_errors_leave_a_stored_reason(
    client: TestClient, member: Actor, llm: ScriptedLLM, status: int, kind: str
) -> None:
    reply = _reply_after(client, member, Reply(status=status, error_message="scripted"), llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", kind)
    assert reply["error"]
    assert reply["content"] == ""


def test_a_stream_cut_mid_reply_keeps_the_partial_text_and_is_not_retried(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    cut = Reply(text=LONG_TEXT, chunk_size=10, cut_after_chunks=3)
    reply = _reply_after(client, member, cut, "a retry must not happen", llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "unavailable")
    assert reply["content"] == LONG_TEXT[:30]
    assert "broke off" in reply["error"]
    assert len(llm.requests) == 1


MID_STREAM_EVENTS = {
    # As providers send one when the model is overloaded after the stream has begun.
    "provider-error": json.dumps({"error": {"message": "Overloaded", "code": 529}}).encode(),
    "not-json": b"{this is not json",
    "empty-object": b"{}",
    "no-choices": json.dumps({"object": "chat.completion.chunk", "choices": []}).encode(),
}


@pytest.mark.parametrize("event", MID_STREAM_EVENTS.values(), ids=MID_STREAM_EVENTS.keys())
def test_an_error_or_a_malformed_event_mid_stream_keeps_the_partial_text_and_is_not_retried(
    client: TestClient, member: Actor, llm: ScriptedLLM, event: bytes
) -> None:
    """Each ends the stream there (then ``[DONE]``): a reply that stopped without its end."""
    broken = Reply(text=LONG_TEXT, chunk_size=10, event_after_chunks=3, event=event)
    reply = _reply_after(client, member, broken, "a retry must not happen", llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "unavailable")
    assert reply["content"] == LONG_TEXT[:30]
    assert "broke off" in reply["error"]
    assert len(llm.requests) == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body><h1>Sign in to the proxy</h1></body></html>", "text/html; charset=utf-8"),
        (b'{"status": "ok"}', "application/json"),
    ],
    ids=["html", "json"],
)
def test_an_answer_that_is_no_stream_is_a_failure_that_says_what_answered(
    client: TestClient, member: Actor, llm: ScriptedLLM, body: bytes, content_type: str
) -> None:
    """A proxy's page sent with 200 read as the model's reply being empty."""
    page = Reply(raw_body=body, raw_content_type=content_type)
    reply = _reply_after(client, member, page, llm=llm)
    assert (reply["status"], reply["error_kind"], reply["content"]) == ("error", "empty", "")
    assert f"answered with {content_type}, not a stream" in reply["error"]
    assert "DESIGNGATE_LLM_API_BASE" in reply["error"]


def test_an_event_stream_without_text_is_still_an_empty_reply(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    done_only = Reply(raw_body=b"data: [DONE]\n\n", raw_content_type="text/event-stream")
    reply = _reply_after(client, member, done_only, llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "empty")
    assert reply["error"] == "The model's reply was empty: it sent no text."


@pytest.mark.parametrize("settings_overrides", [{"llm_max_reply_chars": 45}], ids=["45-chars"])
def test_a_reply_that_goes_on_past_the_limit_is_cut_off_keeping_its_text(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """A model that never stops is never silent long enough to time out: without a limit
    its reply grew, and its thread refused questions, for as long as it went on."""
    # 1,160 pieces, one every 10 ms: read to its end, the reply would take 12 s.
    endless = Reply(text=LONG_TEXT * 50, chunk_size=10, delay_s=0.01)
    reply = _reply_after(client, member, endless, "a retry must not happen", llm=llm)

    assert (reply["status"], reply["error_kind"]) == ("error", "too_long")
    assert reply["content"] == LONG_TEXT[:45]
    assert "passed 45 characters" in reply["error"]
    assert len(llm.requests) == 1
    # The stream was closed, not read to its end: the server's next write fails.
    assert endless.abandoned.wait(5)


@pytest.mark.parametrize("text", ["", " \n\t "], ids=["no-text", "whitespace"])
def test_an_empty_reply_fails_with_a_reason_and_the_thread_takes_the_next_question(
    client: TestClient, member: Actor, llm: ScriptedLLM, text: str
) -> None:
    """Stored as complete, a reply without a word read as the model's answer."""
    reply = _reply_after(client, member, Reply(text=text), "a retry must not happen", llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "empty")
    assert "empty" in reply["error"]
    assert reply["content"] == text
    assert len(llm.requests) == 1

    say(client, member, reply["thread_id"], "Try again, please.")
    assert last_reply(client, member, reply["thread_id"])["status"] == "complete"


@pytest.mark.parametrize(
    "settings_overrides", [{"fallback_models": ["openai/fallback-model"]}], ids=["with-fallback"]
)
def test_a_model_that_answers_with_nothing_gives_way_to_the_fallback(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """Nothing was shown of the empty answer, so another model may answer in its place; it
    is not retried on the same model."""
    llm.script_for("openai/scripted-model", "", "a retry must not happen")
    llm.script_for("openai/fallback-model", "The fallback's designs.")
    reply = _reply_after(client, member, llm=llm)
    assert (reply["status"], reply["content"]) == ("complete", "The fallback's designs.")
    assert reply["model"] == "openai/fallback-model"
    assert [a["kind"] for a in reply["attempts"]] == ["empty"]


@pytest.mark.parametrize(
    ("finish_reason", "reason"),
    [
        ("length", "stopped the reply at its length limit"),
        ("content_filter", "content filter stopped the reply"),
    ],
)
def test_a_reply_the_provider_stopped_keeps_its_text_and_says_why(
    client: TestClient, member: Actor, llm: ScriptedLLM, finish_reason: str, reason: str
) -> None:
    """The provider's max tokens or content filter ends the stream as if it were whole."""
    stopped = Reply(text=LONG_TEXT, finish_reason=finish_reason)
    reply = _reply_after(client, member, stopped, "a retry must not happen", llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "cut_off")
    assert reason in reply["error"]
    assert reply["content"] == LONG_TEXT
    assert len(llm.requests) == 1


@pytest.mark.parametrize("unstorable", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_characters_no_database_can_store_are_stored_as_replacement_characters(
    client: TestClient, member: Actor, llm: ScriptedLLM, unstorable: str
) -> None:
    """PostgreSQL's text cannot hold NUL, and UTF-8 (so neither database) a lone surrogate,
    which the model server's JSON can escape: every save of the reply failed, and it was
    left streaming, its thread refusing questions."""
    text = f"One:{unstorable} a consumer."
    reply = _reply_after(client, member, Reply(text=text, chunk_size=5), llm=llm)
    assert (reply["status"], reply["content"]) == ("complete", "One:\ufffd a consumer.")


@pytest.mark.parametrize("settings_overrides", [{"llm_max_retries": 0}], ids=["no-retries"])
def test_nul_characters_in_a_providers_error_are_stored_as_replacement_characters(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    reply = _reply_after(client, member, Reply(status=400, error_message="bad\x00input"), llm=llm)
    assert reply["status"] == "error"
    assert "bad\ufffdinput" in reply["error"]


def test_an_unauthorised_key_is_not_retried(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    reply = _reply_after(client, member, Reply(status=401, error_message="bad key"), "ok", llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "unauthorised")
    assert "refused the API key" in reply["error"]
    assert len(llm.requests) == 1


def test_a_prompt_too_long_for_the_model_is_not_retried(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    overflow = Reply(
        status=400,
        error_message="This model's maximum context length is 4096 tokens. However, your "
        "messages resulted in 9000 tokens.",
    )
    reply = _reply_after(client, member, overflow, "ok", llm=llm)
    assert (reply["status"], reply["error_kind"]) == ("error", "too_long")
    assert len(llm.requests) == 1


UNKNOWN_MODEL = Reply(status=404, error_message="The model `scripted-model` does not exist")


@pytest.mark.parametrize(
    "settings_overrides", [{"llm_breaker_threshold": 1}], ids=["opens-after-one-failure"]
)
def test_a_model_the_server_does_not_know_is_not_retried_and_leaves_the_circuit_closed(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    """A configuration problem, like a refused key: retrying it only tripled the requests,
    and counting it opened the circuit, so the next questions failed as "circuit open"."""
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(UNKNOWN_MODEL, "Designs, once the model is known.")
    say(client, member, blind["id"], "Propose designs.")
    failed = last_reply(client, member, blind["id"])
    say(client, member, blind["id"], "Propose designs again.")

    assert (failed["status"], failed["error_kind"]) == ("error", "unknown_model")
    assert "does not know this model" in failed["error"]
    assert last_reply(client, member, blind["id"])["status"] == "complete"
    assert len(llm.requests) == 2


@pytest.mark.parametrize(
    "settings_overrides", [{"fallback_models": ["openai/fallback-model"]}], ids=["with-fallback"]
)
def test_a_fallback_model_answers_for_a_model_the_server_does_not_know(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script_for("openai/scripted-model", UNKNOWN_MODEL, "a retry must not happen")
    llm.script_for("openai/fallback-model", "The fallback's designs.")
    reply = _reply_after(client, member, llm=llm)

    assert (reply["status"], reply["model"]) == ("complete", "openai/fallback-model")
    assert [a["kind"] for a in reply["attempts"]] == ["unknown_model"]
    assert len(llm.requests_for("openai/scripted-model")) == 1


@pytest.mark.parametrize("status", [429, 500])
def test_transient_failures_are_retried_and_the_reply_completes(
    client: TestClient, member: Actor, llm: ScriptedLLM, status: int
) -> None:
    failing = Reply(status=status, error_message="busy", headers={"Retry-After": "0"})
    reply = _reply_after(client, member, failing, failing, "Third time lucky.", llm=llm)
    assert reply["status"] == "complete"
    assert reply["content"] == "Third time lucky."
    assert len(llm.requests) == 3
    assert [a["kind"] for a in reply["attempts"]] == [reply_kind(status)] * 2


def reply_kind(status: int) -> str:
    return "rate_limited" if status == 429 else "unavailable"


def test_retries_are_bounded(client: TestClient, member: Actor, llm: ScriptedLLM) -> None:
    failing = Reply(status=500, error_message="down")
    reply = _reply_after(client, member, failing, failing, failing, failing, llm=llm)
    assert reply["status"] == "error"
    assert len(llm.requests) == 3  # one call and DESIGNGATE_LLM_MAX_RETRIES=2 retries


@pytest.mark.parametrize(
    "settings_overrides",
    [{"fallback_models": ["openai/fallback-model"], "llm_max_retries": 1}],
    ids=["with-fallback"],
)
def test_a_fallback_model_answers_when_the_primary_keeps_failing(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    llm.script_for("openai/scripted-model", Reply(status=500), Reply(status=503))
    llm.script_for("openai/fallback-model", "The fallback's designs.")
    reply = _reply_after(client, member, llm=llm)
    assert reply["status"] == "complete"
    assert reply["content"] == "The fallback's designs."
    assert reply["model"] == "openai/fallback-model"
    assert reply["requested_model"] == "openai/scripted-model"
    assert "fallback" in reply["flags"]
    assert [a["model"] for a in reply["attempts"]] == ["openai/scripted-model"] * 2


def test_decisions_can_still_be_recorded_while_the_model_fails(
    client: TestClient, member: Actor, llm: ScriptedLLM
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script(Reply(status=401))
    say(client, member, blind["id"], "Propose designs.")
    item = item_in(client, member, project["id"], "recovery")
    decided = factories.decide(client, member, item)
    assert decided["revision"] == 1
