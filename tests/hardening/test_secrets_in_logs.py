"""No secret or token in logs: passwords, API tokens, the model provider's key, the secret key."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.models.enums import Role
from app.services import users
from tests import factories
from tests.conftest import TEST_SECRET, Actor, make_settings
from tests.hardening.server import Server, designgate_env, run_cli
from tests.llm_server import Reply, ScriptedLLM

LLM_KEY = "sk-provider-key-0f9e8d7c6b5a49382716"
PASSWORD = "tr0ub4dor&3-horse-battery"
WRONG_TOKEN = "dg_guessed-token-that-is-not-real-123456"


def _app_with_key(database_url: str, llm: ScriptedLLM, key: str) -> TestClient:
    """The app with a model whose provider key is ``key``."""
    settings = make_settings(
        database_url,
        model="openai/scripted-model",
        llm_api_base=llm.api_base,
        llm_api_key=key,
        llm_timeout_s=2.0,
        llm_warmup=False,
        llm_max_retries=0,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def keyed_client(database_url: str, llm: ScriptedLLM) -> Iterator[TestClient]:
    """The app with a model whose provider key is LLM_KEY."""
    with _app_with_key(database_url, llm, LLM_KEY) as client:
        yield client


def _exercise(client: TestClient, llm: ScriptedLLM) -> tuple[Actor, str]:
    """Create a user and a token, use them, call the model; return the actor and token."""
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.transaction() as session:
        user = users.create_user(
            session, email="ann@example.test", name="Ann", role=Role.ADMIN, password=PASSWORD
        )
        _token, plain = users.create_token(session, user=user, label="laptop")
    actor = Actor(user.id, user.email, Role.ADMIN, plain)
    assert client.get("/api/v1/me", headers=actor.headers).status_code == 200
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {WRONG_TOKEN}"}).status_code
        == 401
    )
    project = factories.create_project(client, actor)
    thread = client.post(
        f"/api/v1/projects/{project['id']}/threads", json={"mode": "blind"}, headers=actor.headers
    ).json()
    llm.script(Reply(text="Two designs: a queue, or a table with a unique key."))
    posted = client.post(
        f"/api/v1/threads/{thread['id']}/messages", json={"content": "Go"}, headers=actor.headers
    )
    assert posted.status_code == 202, posted.text
    # A provider that echoes the key it was sent back in its error message.
    llm.script(Reply(status=401, error_message=f"Incorrect API key provided: {LLM_KEY}"))
    client.post(
        f"/api/v1/threads/{thread['id']}/messages", json={"content": "Again"}, headers=actor.headers
    )
    factories.decide_all(client, actor, project["id"])
    llm.script(Reply(text="def main() -> None: ..."))
    generated = client.post(
        f"/api/v1/projects/{project['id']}/generations", json={}, headers=actor.headers
    )
    assert generated.status_code == 202, generated.text
    return actor, plain


def _secrets(token: str) -> list[str]:
    return [PASSWORD, token, LLM_KEY, TEST_SECRET, WRONG_TOKEN]


def test_logs_carry_no_password_token_or_key(
    keyed_client: TestClient, llm: ScriptedLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _actor, token = _exercise(keyed_client, llm)
    assert len(llm.requests) == 3
    loggers = {record.name.split(".")[0] for record in caplog.records}
    assert {"LiteLLM", "openai"} <= loggers, loggers
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    for secret in _secrets(token):
        assert secret not in logged


def test_a_provider_echoing_the_key_does_not_put_it_in_a_stored_reason(
    keyed_client: TestClient, llm: ScriptedLLM
) -> None:
    actor, _token = _exercise(keyed_client, llm)
    project_id = keyed_client.get("/api/v1/projects", headers=actor.headers).json()[0]["id"]
    threads = keyed_client.get(f"/api/v1/projects/{project_id}/threads", headers=actor.headers)
    view = keyed_client.get(f"/api/v1/threads/{threads.json()[0]['id']}", headers=actor.headers)
    failed = [m for m in view.json()["messages"] if m["status"] == "error"]
    assert [m["error_kind"] for m in failed] == ["unauthorised"]
    assert LLM_KEY not in view.text
    assert "Incorrect API key provided" in failed[0]["error"]


@pytest.mark.parametrize(
    ("key", "echoed", "stored"),
    [
        # A local server's placeholder key: cut out where it stands alone, not out of words.
        (
            "ollama",
            "Checked ollama: model ollama-7b not found",
            "Checked [redacted]: model ollama-7b not found",
        ),
        ("k", "Check the key: k", "Check the key: [redacted]"),
        # A provider's key: cut out wherever it appears, even run into other text.
        (LLM_KEY, f"Bad key:{LLM_KEY}x, key={LLM_KEY}", "Bad key:[redacted]x, key=[redacted]"),
    ],
    ids=["placeholder word", "one letter", "provider key"],
)
def test_a_key_is_cut_out_of_a_reason_and_a_short_one_only_where_it_stands_alone(
    database_url: str, llm: ScriptedLLM, admin: Actor, key: str, echoed: str, stored: str
) -> None:
    llm.script(Reply(status=401, error_message=echoed))
    with _app_with_key(database_url, llm, key) as client:
        project = factories.create_project(client, admin)
        threads = f"/api/v1/projects/{project['id']}/threads"
        thread = client.post(threads, json={"mode": "blind"}, headers=admin.headers).json()
        messages = f"/api/v1/threads/{thread['id']}/messages"
        assert client.post(messages, json={"content": "Go"}, headers=admin.headers).is_success
        [reply] = _wait_for_replies(client, thread["id"], 1, admin.headers)
    assert reply["error_kind"] == "unauthorised"
    assert stored in reply["error"], reply["error"]


# A wait, not a measure: the server starts its model process (litellm's import) on the first
# call, which took more than 10 s on a machine busy with other test runs.
REPLIES_WITHIN_S = 90.0


def _wait_for_replies(
    http: httpx.Client | TestClient,
    thread_id: int,
    count: int,
    headers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + REPLIES_WITHIN_S
    while time.monotonic() < deadline:
        messages = http.get(f"/api/v1/threads/{thread_id}", headers=headers).json()["messages"]
        replies = [m for m in messages if m["role"] == "assistant"]
        if len(replies) == count and all(m["status"] != "streaming" for m in replies):
            return replies
        time.sleep(0.05)
    raise AssertionError(f"thread {thread_id} did not finish {count} replies")


def test_a_real_server_logs_no_secret(database_url: str, llm: ScriptedLLM, tmp_path: Path) -> None:
    """The CLI and `designgate serve` (uvicorn's access log included), end to end."""
    env = designgate_env(
        database_url,
        model="openai/scripted-model",
        llm_api_base=llm.api_base,
        llm_api_key=LLM_KEY,
        llm_max_retries="0",
    )
    created = run_cli(env, "user", "create", "bo@example.test", "--password-stdin", stdin=PASSWORD)
    assert created.returncode == 0, created.stderr
    issued = run_cli(env, "token", "create", "bo@example.test", "--label", "ci")
    token = issued.stdout.strip().splitlines()[-1]
    cli_output = created.stdout + created.stderr + issued.stderr
    llm.script(
        Reply(text="A queue, or a unique key."),
        Reply(status=401, error_message=f"Incorrect API key provided: {LLM_KEY}"),
    )
    server = Server(env, tmp_path / "server.log")
    with server, server.client(headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/api/v1/me").status_code == 200
        wrong = http.get("/api/v1/me", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
        assert wrong.status_code == 401
        project = http.post("/api/v1/projects", json={"name": "n", "problem": "p"}).json()
        thread = http.post(
            f"/api/v1/projects/{project['id']}/threads", json={"mode": "blind"}
        ).json()
        http.post(f"/api/v1/threads/{thread['id']}/messages", json={"content": "Go"})
        _wait_for_replies(http, thread["id"], 1)
        http.post(f"/api/v1/threads/{thread['id']}/messages", json={"content": "Again"})
        assert _wait_for_replies(http, thread["id"], 2)[-1]["error_kind"] == "unauthorised"
        [mine] = http.get("/api/v1/tokens").json()
        assert http.delete(f"/api/v1/tokens/{mine['id']}").status_code == 204
        assert http.get("/api/v1/me").status_code == 401
    logged = server.output()
    assert '"GET /api/v1/me HTTP/1.1" 401' in logged, "uvicorn's access log is not in the output"
    for secret in _secrets(token):
        assert secret not in logged
        assert secret not in cli_output
