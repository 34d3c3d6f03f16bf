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


def test_a_signed_in_user_downloads_every_export_from_the_review_page(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    decided = factories.decide_all(client, member, project["id"])
    sign_in(client, member.email)
    review = client.get(f"/projects/{project['id']}").text
    names = ("design-pack.md", "spec-kit.zip", "adr.zip", "report.html", "checklist.csv")
    for name in names:
        path = f"/projects/{project['id']}/exports/{name}"
        assert f'href="{path}"' in review
        response = client.get(path)
        assert response.status_code == 200, name
        assert response.content
    pack = client.get(f"/projects/{project['id']}/exports/design-pack.md").text
    assert all(decision["summary"] in pack for decision in decided)


def test_exports_need_a_session_and_a_known_name(client: TestClient, member: Actor) -> None:
    project = factories.create_project(client, member)
    anonymous = client.get(f"/projects/{project['id']}/exports/adr.zip", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 401)
    sign_in(client, member.email)
    assert client.get(f"/projects/{project['id']}/exports/passwords.txt").status_code == 404
