"""The new-project form starts a review from a checklist template."""

from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor
from tests.web.test_pages import sign_in


def test_the_form_offers_every_template_and_creates_from_the_chosen_one(
    client: TestClient, member: Actor
) -> None:
    token = sign_in(client, member.email)
    form = client.get("/projects/new").text
    for key in ("generic-service", "rabbitmq-consumer", "kafka-stream-processor"):
        assert f'value="{key}"' in form
    body = {
        "name": "Order consumer",
        "problem": "Consume orders from RabbitMQ and store them in PostgreSQL.",
        "template": "rabbitmq-consumer",
        "csrf_token": token,
    }
    created = client.post("/projects", data=body, follow_redirects=False)
    assert created.status_code in (303, 200), created.text
    project = client.get("/api/v1/projects", headers=member.headers).json()[0]
    assert project["template"] == "rabbitmq-consumer"
    titles = " ".join(
        item["title"].lower() for item in factories.checklist(client, member, project["id"])
    )
    assert "acknowledg" in titles


def test_an_unknown_template_is_an_error_next_to_its_field(
    client: TestClient, member: Actor
) -> None:
    token = sign_in(client, member.email)
    body = {"name": "X", "problem": "Y", "template": "no-such-template", "csrf_token": token}
    refused = client.post("/projects", data=body)
    assert refused.status_code == 422
    assert 'id="project-template-error"' in refused.text
