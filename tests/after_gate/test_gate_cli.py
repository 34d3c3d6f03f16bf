"""`designgate gate PROJECT_ID`, run as the real console script, for scripts and CI."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests import factories
from tests.after_gate.cli import designgate
from tests.conftest import Actor


def test_the_gate_command_exits_1_listing_missing_then_0_then_1_listing_stale(
    client: TestClient, member: Actor, database_url: str
) -> None:
    project = factories.create_project(client, member)
    items = factories.checklist(client, member, project["id"])

    closed = designgate(database_url, "gate", str(project["id"]))
    assert closed.returncode == 1
    lines = closed.stdout.decode().splitlines()
    assert lines[0].startswith("closed: 6 item(s) have no decision")
    assert [line.split()[1] for line in lines[1:]] == [str(item["id"]) for item in items]
    assert all(line.startswith("missing") for line in lines[1:])

    factories.decide_all(client, member, project["id"])
    opened = designgate(database_url, "gate", str(project["id"]))
    assert opened.returncode == 0
    assert opened.stdout.decode().startswith("open: all 6 items")

    edited = client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], "data_model": "orders(id, total)"},
        headers=member.headers,
    )
    assert edited.status_code == 200
    stale = designgate(database_url, "gate", str(project["id"]))
    assert stale.returncode == 1
    stale_lines = stale.stdout.decode().splitlines()[1:]
    assert len(stale_lines) == 6
    assert all(line.startswith("stale") for line in stale_lines)


def test_the_gate_command_exits_2_for_an_unknown_project(database_url: str) -> None:
    unknown = designgate(database_url, "gate", "999999")

    assert unknown.returncode == 2
    assert b"Project 999999 does not exist" in unknown.stderr
