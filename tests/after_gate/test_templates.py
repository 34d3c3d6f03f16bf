"""Checklist templates: built-ins, the team's files and API-added ones; bad ones refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from app.main import create_app
from app.models.enums import Category
from app.services.templates import TemplateInvalid, builtin_catalog, load_catalog
from tests import factories
from tests.conftest import Actor, make_settings
from tests.web.test_pages import sign_in

BUILT_INS = {
    "generic-service",
    "rabbitmq-consumer",
    "kafka-stream-processor",
    "http-api-service",
    "react-frontend",
}


def _template(key: str = "team-batch-job", **changes: Any) -> dict[str, Any]:
    items = [
        {"category": c.value, "title": f"{c.value} item", "question": f"What about {c.value}?"}
        for c in Category
    ]
    return {
        "key": key,
        "name": "Batch job",
        "description": "Nightly jobs",
        "items": items,
        **changes,
    }


def test_every_built_in_template_loads_and_covers_the_six_categories() -> None:
    catalog = builtin_catalog()

    assert set(catalog.by_key) == BUILT_INS
    for loaded in catalog.by_key.values():
        assert {item.category for item in loaded.spec.items} == set(Category), loaded.spec.key
        assert all(item.question.rstrip().endswith("?") for item in loaded.spec.items)
        assert all(item.verification for item in loaded.spec.items)


def test_the_rabbitmq_template_asks_about_what_such_consumers_get_wrong() -> None:
    spec = builtin_catalog().by_key["rabbitmq-consumer"].spec
    text = " ".join(f"{item.title} {item.question}" for item in spec.items).lower()

    for topic in ("connection pool", "network blips", "acknowledge", "malformed", "dead-letter"):
        assert topic in text, topic


def test_a_project_starts_from_the_template_it_names(client: TestClient, member: Actor) -> None:
    default = factories.create_project(client, member)
    rabbit = factories.create_project(client, member, template="rabbitmq-consumer")

    assert default["template"] == "generic-service"
    assert len(factories.checklist(client, member, default["id"])) == 6
    titles = [i["title"] for i in factories.checklist(client, member, rabbit["id"])]
    expected = [i.title for i in builtin_catalog().by_key["rabbitmq-consumer"].spec.items]
    assert titles == expected
    assert factories.gate(client, member, rabbit["id"])["total"] == len(expected)


def test_an_unknown_template_is_refused_with_422(client: TestClient, member: Actor) -> None:
    response = client.post(
        "/api/v1/projects",
        json={"name": "X", "problem": "Y", "template": "cobol-mainframe"},
        headers=member.headers,
    )

    assert response.status_code == 422
    assert response.json()["field"] == "template"
    assert "cobol-mainframe" in response.json()["detail"]


def test_templates_are_listed_with_their_items(client: TestClient, viewer: Actor) -> None:
    response = client.get("/api/v1/templates", headers=viewer.headers)

    assert response.status_code == 200
    listed = {t["key"]: t for t in response.json()}
    assert set(listed) == BUILT_INS
    assert listed["react-frontend"]["source"] == "built-in"
    assert {i["category"] for i in listed["react-frontend"]["items"]} == {c.value for c in Category}


@pytest.fixture
def templates_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    return folder


def test_a_malformed_template_file_is_refused_naming_the_file_and_field(
    templates_dir: Path, database_url: str
) -> None:
    bad = _template()
    bad["items"][1]["category"] = "vibes"
    path = templates_dir / "ours.yaml"
    path.write_text(yaml.safe_dump(bad))

    with pytest.raises(TemplateInvalid) as refused:
        load_catalog(templates_dir)
    assert refused.value.detail.startswith(f"{path}: items.1.category: ")
    assert refused.value.extensions["field"] == "items.1.category"
    with pytest.raises(TemplateInvalid, match=re.escape("ours.yaml: items.1.category")):
        create_app(make_settings(database_url, templates_dir=templates_dir))


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        ("key: x\nname: [unclosed", "", "cannot be read"),
        (yaml.safe_dump(_template(items=_template()["items"][:5])), "items", "missing: recovery"),
        (yaml.safe_dump(_template(key="generic-service")), "key", "already the key of built-in"),
        (yaml.safe_dump({**_template(), "colour": "red"}), "colour", "Extra inputs"),
    ],
)
def test_template_files_are_refused_for_each_kind_of_fault(
    templates_dir: Path, content: str, field: str, words: str
) -> None:
    (templates_dir / "broken.yml").write_text(content)

    with pytest.raises(TemplateInvalid) as refused:
        load_catalog(templates_dir)
    assert "broken.yml" in refused.value.detail
    assert refused.value.extensions["field"] == field
    assert words in refused.value.detail


def test_a_team_template_file_is_listed_and_usable(
    templates_dir: Path, database_url: str, member: Actor
) -> None:
    (templates_dir / "batch.json").write_text(json.dumps(_template()))
    app = create_app(make_settings(database_url, templates_dir=templates_dir))
    with TestClient(app) as client:
        listed = client.get("/api/v1/templates", headers=member.headers).json()
        project = factories.create_project(client, member, template="team-batch-job")

    assert {"key": "team-batch-job", "source": "file:batch.json"}.items() <= listed[-1].items()
    assert project["template"] == "team-batch-job"


def test_a_malformed_api_template_is_refused_naming_the_request_body_and_field(
    client: TestClient, member: Actor
) -> None:
    bad = _template()
    del bad["items"][3]["question"]
    response = client.post("/api/v1/templates", json=bad, headers=member.headers)

    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"].startswith("request body: items.3.question: Field required")
    assert (problem["source"], problem["field"]) == ("request body", "items.3.question")


def test_an_api_template_is_stored_listed_and_used_once_per_key(
    client: TestClient, member: Actor, viewer: Actor
) -> None:
    created = client.post("/api/v1/templates", json=_template(), headers=member.headers)
    again = client.post("/api/v1/templates", json=_template(), headers=member.headers)
    built_in = client.post(
        "/api/v1/templates", json=_template(key="react-frontend"), headers=member.headers
    )
    by_viewer = client.post("/api/v1/templates", json=_template("x"), headers=viewer.headers)

    assert created.status_code == 201, created.text
    assert created.json()["source"] == "api"
    assert (again.status_code, built_in.status_code, by_viewer.status_code) == (409, 409, 403)
    project = factories.create_project(client, member, template="team-batch-job")
    assert len(factories.checklist(client, member, project["id"])) == 6
    fetched = client.get("/api/v1/templates/team-batch-job", headers=viewer.headers)
    assert fetched.json()["items"][0]["question"] == "What about data_ownership?"


def test_a_file_template_that_takes_a_stored_templates_key_hides_it_and_says_so(
    client: TestClient,
    member: Actor,
    templates_dir: Path,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored = client.post("/api/v1/templates", json=_template(), headers=member.headers)
    assert stored.status_code == 201, stored.text
    # Added to the folder after the team stored its template: the API could not refuse it.
    (templates_dir / "batch.json").write_text(json.dumps(_template(name="Batch job from a file")))

    app = create_app(make_settings(database_url, templates_dir=templates_dir))
    with caplog.at_level("WARNING", logger="designgate"), TestClient(app) as restarted:
        listed = restarted.get("/api/v1/templates", headers=member.headers).json()
        sign_in(restarted, member.email)
        page = restarted.get("/projects/new")

    mine = [t for t in listed if t["key"] == "team-batch-job"]
    from_file = ("Batch job from a file", "file:batch.json")
    assert [(t["name"], t["source"]) for t in mine] == [from_file]
    assert page.status_code == 200
    assert page.text.count('value="team-batch-job"') == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("'team-batch-job'" in w and "file:batch.json" in w for w in warnings), warnings
