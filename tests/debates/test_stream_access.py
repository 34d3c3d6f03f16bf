"""A thread's event stream stops once the API token that opened it is revoked or its user
deactivated, from the server or, on PostgreSQL, from the command line."""

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import stream_access
from tests import factories
from tests.after_gate.sse import events as sse_events
from tests.cli.test_cli import run as run_cli
from tests.conftest import Actor, is_postgres
from tests.debates.helpers import say, start_thread
from tests.llm_server import ScriptedLLM


def _revoke_the_token(client: TestClient, member: Actor, admin: Actor) -> None:
    token_id = client.get("/api/v1/tokens", headers=member.headers).json()[0]["id"]
    revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=member.headers)
    assert revoked.status_code == 204


def _deactivate_the_user(client: TestClient, member: Actor, admin: Actor) -> None:
    deactivated = client.post(f"/api/v1/users/{member.user_id}/deactivate", headers=admin.headers)
    assert deactivated.status_code == 200, deactivated.text


@pytest.mark.parametrize(
    "end_access",
    [_revoke_the_token, _deactivate_the_user],
    ids=["token revoked", "user deactivated"],
)
def test_a_thread_stream_ends_with_unauthorized_once_its_access_ends(
    app: FastAPI,
    client: TestClient,
    member: Actor,
    admin: Actor,
    llm: ScriptedLLM,
    end_access: Callable[[TestClient, Actor, Actor], None],
) -> None:
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script("First designs.")
    say(client, member, blind["id"], "Propose designs.")
    url = f"/api/v1/threads/{blind['id']}/events"
    with client.stream("GET", url, headers=member.headers) as response:
        events = sse_events(response.iter_lines())
        assert [next(events)[0], next(events)[0]] == ["message", "message"]
        end_access(client, member, admin)
        llm.script("Designs the member must not see.")
        say(client, admin, blind["id"], "More designs, please.")

        name, problem = next(events)
        assert (name, problem["status"]) == ("unauthorized", 401)
        assert list(events) == []  # and the stream has ended
    assert app.state.hub.subscriber_count(f"thread:{blind['id']}") == 0


@pytest.mark.skipif(not is_postgres(), reason="SQLite has no channel between processes")
@pytest.mark.timeout(60)  # without the event, the stream would wait for its re-check
@pytest.mark.parametrize("command", ["token revoke", "user deactivate"])
def test_the_command_line_ends_a_running_servers_stream_at_once_on_postgresql(
    app: FastAPI,
    client: TestClient,
    member: Actor,
    database_url: str,
    llm: ScriptedLLM,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """The command's event reaches this server through NOTIFY; it waited for the re-check."""
    monkeypatch.setattr(stream_access, "RECHECK_S", 3600.0)
    project = factories.create_project(client, member)
    blind = start_thread(client, member, project["id"], "blind")
    llm.script("First designs.")
    say(client, member, blind["id"], "Propose designs.")
    token_id = client.get("/api/v1/tokens", headers=member.headers).json()[0]["id"]
    target = str(token_id) if command == "token revoke" else member.email
    url = f"/api/v1/threads/{blind['id']}/events"
    with client.stream("GET", url, headers=member.headers) as response:
        events = sse_events(response.iter_lines())
        assert [next(events)[0], next(events)[0]] == ["message", "message"]
        done = run_cli(database_url, *command.split(), target)
        assert done.returncode == 0, done.stderr

        name, problem = next(events)
        assert (name, problem["status"]) == ("unauthorized", 401)
