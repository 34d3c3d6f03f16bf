from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor


def test_generation_is_refused_until_every_item_is_decided(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    refused = client.post(
        f"/api/v1/projects/{project['id']}/generations", json={}, headers=member.headers
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert len(refused.json()["missing"]) == 6
    factories.decide_all(client, member, project["id"])
    assert factories.gate(client, member, project["id"])["open"] is True
