"""Small pure pieces: settings lists, lenient JSON, verdict parsing."""

import pytest

from app.config import Settings
from app.llm import LLMFailure, parse_json_object
from app.services.judge import parse_verdict


def test_model_lists_are_comma_separated_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DESIGNGATE_MODELS", "openai/a, anthropic/b ,")
    monkeypatch.setenv("DESIGNGATE_FALLBACK_MODELS", "ollama/c")
    monkeypatch.setenv("DESIGNGATE_MODEL", "openai/main")
    settings = Settings()
    assert settings.debate_models == ["openai/a", "anthropic/b"]
    assert settings.fallback_models == ["ollama/c"]
    assert settings.judging_model == "openai/main"


def test_debates_default_to_the_one_model() -> None:
    settings = Settings(model="openai/main", judge_model="openai/judge")
    assert settings.debate_models == ["openai/main"]
    assert settings.judging_model == "openai/judge"
    assert Settings().debate_models == []


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        'Sure! Here you go: {"a": 1} Hope that helps.',
        '  \n{"a": 1}\n',
    ],
)
def test_a_json_object_is_found_in_a_chatty_reply(text: str) -> None:
    assert parse_json_object(text) == {"a": 1}


@pytest.mark.parametrize("text", ["", "no json here", "[1, 2]", "{broken"])
def test_no_json_object_is_none(text: str) -> None:
    assert parse_json_object(text) is None


def test_verdicts_accept_booleans_and_their_spellings() -> None:
    verdict = parse_verdict({"position_changed": "yes", "new_argument": False})
    assert (verdict.position_changed, verdict.new_argument, verdict.explanation) == (
        True,
        False,
        "",
    )
    assert verdict.flags == ["position_changed", "capitulated"]


def test_an_answer_without_a_verdict_is_a_failure() -> None:
    with pytest.raises(LLMFailure):
        parse_verdict({"position_changed": "maybe", "new_argument": True})
