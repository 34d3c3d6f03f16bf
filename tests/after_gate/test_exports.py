"""Exports built from the design pack, checked against the recorded decisions."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import yaml
from fastapi.testclient import TestClient

from tests import factories
from tests.after_gate.reviewed import Reviewed, reviewed_project
from tests.conftest import Actor

ADR_NAME = re.compile(r"^\d{4}-[a-z0-9]+(-[a-z0-9]+)*\.md$")


def _export(client: TestClient, actor: Actor, project_id: int, name: str) -> bytes:
    response = client.get(f"/api/v1/projects/{project_id}/exports/{name}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.content


def _every_decision_is_in(text: str, reviewed: Reviewed) -> None:
    for decision in reviewed.decisions:
        assert decision["summary"] in text
        assert decision["rationale"] in text
        for alternative in decision["alternatives"]:
            assert alternative in text


def test_the_design_pack_holds_the_design_and_every_current_decision(
    client: TestClient, member: Actor
) -> None:
    reviewed = reviewed_project(client, member)
    pack = _export(client, member, reviewed.project["id"], "design-pack.md").decode()

    _every_decision_is_in(pack, reviewed)
    assert reviewed.superseded["summary"] not in pack
    assert factories.ARCHITECTURE in pack
    assert factories.DATA_MODEL in pack
    assert "Node.js 22" in pack
    for key in ("data_ownership", "degradation", "load", "resilience", "mitigation", "recovery"):
        assert f"(`{key}`)" in pack
    assert pack.count("**Failure handling the code must implement:**") == len(reviewed.decisions)
    assert "Publish a malformed message followed by valid orders" in pack  # a template test


def test_decision_records_are_madr_files_with_their_history(
    client: TestClient, member: Actor
) -> None:
    reviewed = reviewed_project(client, member)
    archive = zipfile.ZipFile(
        io.BytesIO(_export(client, member, reviewed.project["id"], "adr.zip"))
    )
    names = sorted(archive.namelist())

    assert len(names) == len(reviewed.decisions)
    assert all(ADR_NAME.match(name) for name in names), names
    assert names[0].startswith("0001-who-owns-the-order")
    records = [archive.read(name).decode() for name in names]
    for record, decision in zip(records, reviewed.decisions, strict=True):
        assert decision["summary"] in record
        assert decision["rationale"] in record
        for alternative in decision["alternatives"]:
            assert alternative in record
        for heading in (
            "## Context and Problem Statement",
            "## Decision Drivers",
            "## Considered Options",
            "## Decision Outcome",
            "### Consequences",
        ):
            assert heading in record
    front_matter = [yaml.safe_load(record.split("---\n")[1]) for record in records]
    assert front_matter[0]["status"] == "accepted"
    assert front_matter[-1]["status"] == "accepted (risk accepted)"
    assert all(member.email in front["decision-makers"] for front in front_matter)
    assert "## History" in records[1]
    assert f"superseded by revision 2: {reviewed.superseded['summary']}" in records[1]
    assert "No earlier revisions." in records[0]


def test_the_spec_kit_pair_states_requirements_and_rejections(
    client: TestClient, member: Actor
) -> None:
    reviewed = reviewed_project(client, member)
    archive = zipfile.ZipFile(
        io.BytesIO(_export(client, member, reviewed.project["id"], "spec-kit.zip"))
    )

    assert sorted(archive.namelist()) == [
        "specs/001-order-intake/plan.md",
        "specs/001-order-intake/spec.md",
    ]
    spec = archive.read("specs/001-order-intake/spec.md").decode()
    plan = archive.read("specs/001-order-intake/plan.md").decode()
    first = reviewed.decisions[0]
    assert f"**FR-001**: System MUST: {first['summary']}" in spec
    assert f"System MUST NOT: {first['alternatives'][0]}" in spec
    _every_decision_is_in(plan, reviewed)


def test_the_review_report_is_printable_and_escapes_what_people_typed(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member, name="<script>alert(1)</script>")
    item = factories.checklist(client, member, project["id"])[0]
    factories.decide(client, member, item, summary="Use <b>one</b> owner & no other")
    response = client.get(
        f"/api/v1/projects/{project['id']}/exports/report.html", headers=member.headers
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Use &lt;b&gt;one&lt;/b&gt; owner &amp; no other" in html
    assert "@media print" in html
    assert "Gate closed" in html


def test_the_checklist_csv_has_one_row_per_item_with_its_decision(
    client: TestClient, member: Actor
) -> None:
    reviewed = reviewed_project(client, member)
    text = _export(client, member, reviewed.project["id"], "checklist.csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))

    assert [row["summary"] for row in rows] == [d["summary"] for d in reviewed.decisions]
    assert rows[-1]["status"] == "accepted_risk"
    assert rows[0]["rejected_alternatives"] == "Alternative 1a | Alternative 1b"


def test_csv_cells_that_look_like_formulas_are_neutralised(
    client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    factories.decide(client, member, item, summary='=HYPERLINK("http://x")')
    text = _export(client, member, project["id"], "checklist.csv").decode()

    row = next(csv.DictReader(io.StringIO(text)))
    assert row["summary"] == '\'=HYPERLINK("http://x")'


def test_exports_of_an_unknown_project_are_404(client: TestClient, member: Actor) -> None:
    for name in ("design-pack.md", "spec-kit.zip", "adr.zip", "report.html", "checklist.csv"):
        response = client.get(f"/api/v1/projects/999999/exports/{name}", headers=member.headers)
        assert response.status_code == 404, name
