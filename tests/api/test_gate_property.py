"""No sequence of API calls lets a generation start while the gate is closed.

A hypothesis state machine drives the API and keeps its own model of every project
(versions, items, revisions, the design version each decision was made at). After
every generation attempt it checks the server against the model: 202 only when the
model says the gate is open, otherwise 409 with exactly the missing and stale items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.config import Settings
from app.main import create_app
from app.models.enums import Category, DecisionStatus, Role
from tests.conftest import Actor, make_actor
from tests.llm_server import Reply, ScriptedLLM

DESIGN_FIELDS = ("problem", "architecture", "data_model")
# A small pool of values, so that an edit sometimes saves what is already there.
TEXTS = st.sampled_from(["alpha", "beta", "gamma"])
MAX_PROJECTS = 2


@dataclass
class ItemModel:
    revision: int = 0
    decided_at_design_version: int | None = None


@dataclass
class ProjectModel:
    """What the gate must be, worked out independently of the server's code."""

    project_id: int
    fields: dict[str, str]
    version: int = 1
    design_version: int = 1
    items: dict[int, ItemModel] = field(default_factory=dict)  # in checklist order
    generations: int = 0

    def missing(self) -> list[int]:
        return [item_id for item_id, item in self.items.items() if item.revision == 0]

    def stale(self) -> list[int]:
        return [
            item_id
            for item_id, item in self.items.items()
            if item.revision and item.decided_at_design_version != self.design_version
        ]

    def gate_open(self) -> bool:
        return bool(self.items) and not self.missing() and not self.stale()

    def edit(self, changes: dict[str, str]) -> None:
        changed = {k: v for k, v in changes.items() if self.fields[k] != v}
        self.fields.update(changed)
        if changed:
            self.version += 1
        if changed.keys() & set(DESIGN_FIELDS):
            self.design_version += 1


@dataclass(frozen=True)
class Clients:
    client: TestClient
    model_client: TestClient
    actor: Actor
    llm: ScriptedLLM


class GateMachine(RuleBasedStateMachine):
    def __init__(self, clients: Clients) -> None:
        super().__init__()
        self.client = clients.client  # no model configured
        self.model_client = clients.model_client  # the scripted server as its model
        self.actor = clients.actor
        self.llm = clients.llm
        self.projects: list[ProjectModel] = []

    # Helpers

    def _pick(self, data: st.DataObject) -> ProjectModel:
        return data.draw(st.sampled_from(self.projects), label="project")

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.request(method, f"/api/v1{path}", json=body, headers=self.actor.headers)

    def _decide(
        self,
        project: ProjectModel,
        item_id: int,
        version: int | None,
        status: DecisionStatus = DecisionStatus.DECIDED,
    ) -> Any:
        body: dict[str, Any] = {"status": status.value, "summary": "s", "rationale": "r"}
        if version is not None:
            body["version"] = version
        return self._api("put", f"/checklist-items/{item_id}/decision", body)

    def _record(
        self, project: ProjectModel, item_id: int, status: DecisionStatus = DecisionStatus.DECIDED
    ) -> None:
        item = project.items[item_id]
        response = self._decide(project, item_id, item.revision, status)
        assert response.status_code == 200, response.text
        item.revision += 1
        item.decided_at_design_version = project.design_version
        assert (response.json()["revision"], response.json()["stale"]) == (item.revision, False)

    # Rules

    @precondition(lambda self: len(self.projects) < MAX_PROJECTS)
    @rule(problem=TEXTS)
    def create_project(self, problem: str) -> None:
        body = {"name": "n", "problem": problem, "architecture": "a", "data_model": "d"}
        response = self._api("post", "/projects", body)
        assert response.status_code == 201, response.text
        created = response.json()
        fields = {k: created[k] for k in ("name", *DESIGN_FIELDS)}
        project = ProjectModel(created["id"], fields, version=created["version"])
        items = self._api("get", f"/projects/{project.project_id}/checklist").json()
        project.items = {item["id"]: ItemModel() for item in items}
        self.projects.append(project)

    @precondition(lambda self: self.projects)
    @rule(data=st.data(), category=st.sampled_from(list(Category)))
    def add_item(self, data: st.DataObject, category: Category) -> None:
        project = self._pick(data)
        body = {"category": category.value, "title": "custom", "question": "q"}
        response = self._api("post", f"/projects/{project.project_id}/checklist", body)
        assert response.status_code == 201, response.text
        project.items[response.json()["id"]] = ItemModel()

    @precondition(lambda self: self.projects)
    @rule(data=st.data(), status=st.sampled_from(list(DecisionStatus)))
    def decide_with_the_current_version(self, data: st.DataObject, status: DecisionStatus) -> None:
        project = self._pick(data)
        item_id = data.draw(st.sampled_from(list(project.items)), label="item")
        self._record(project, item_id, status)

    @precondition(lambda self: self.projects)
    @rule(data=st.data())
    def decide_with_a_stale_version(self, data: st.DataObject) -> None:
        project = self._pick(data)
        item_id = data.draw(st.sampled_from(list(project.items)), label="item")
        current = project.items[item_id].revision
        wrong = st.integers(min_value=0, max_value=current + 2).filter(lambda v: v != current)
        choices = st.one_of(wrong, st.none()) if current else wrong
        version = data.draw(choices, label="version")
        response = self._decide(project, item_id, version)
        assert response.status_code == 409, response.text

    @precondition(lambda self: self.projects)
    @rule(data=st.data())
    def decide_everything_still_open(self, data: st.DataObject) -> None:
        project = self._pick(data)
        for item_id in project.missing() + project.stale():
            self._record(project, item_id)

    @precondition(lambda self: self.projects)
    @rule(
        data=st.data(),
        changes=st.dictionaries(st.sampled_from(DESIGN_FIELDS), TEXTS, min_size=1),
        based_on_stale_version=st.booleans(),
    )
    def edit_design(
        self, data: st.DataObject, changes: dict[str, str], based_on_stale_version: bool
    ) -> None:
        project = self._pick(data)
        version = project.version
        if based_on_stale_version:
            others = st.integers(min_value=1, max_value=version + 2).filter(lambda v: v != version)
            version = data.draw(others, label="stale version")
        response = self._api(
            "patch", f"/projects/{project.project_id}", {**changes, "version": version}
        )
        if based_on_stale_version:
            assert response.status_code == 409, response.text
            return
        assert response.status_code == 200, response.text
        project.edit(changes)
        assert response.json()["version"] == project.version
        assert response.json()["design_version"] == project.design_version

    @precondition(lambda self: self.projects)
    @rule(data=st.data(), name=TEXTS)
    def edit_name(self, data: st.DataObject, name: str) -> None:
        project = self._pick(data)
        body = {"name": name, "version": project.version}
        response = self._api("patch", f"/projects/{project.project_id}", body)
        assert response.status_code == 200, response.text
        project.edit({"name": name})
        assert response.json()["design_version"] == project.design_version

    @precondition(lambda self: self.projects)
    @rule(data=st.data())
    def generate_through_the_model(self, data: st.DataObject) -> None:
        """With a model configured, an open gate starts a real generation (202)."""
        project = self._pick(data)
        self.llm.reset()
        self.llm.script(Reply(text="print('generated')"))
        path = f"/api/v1/projects/{project.project_id}/generations"
        response = self.model_client.post(path, json={}, headers=self.actor.headers)
        if project.gate_open():
            assert response.status_code == 202, response.text
            assert len(self.llm.requests) == 1
            project.generations += 1
        else:
            self._assert_refused(project, response)
            assert self.llm.requests == []

    @invariant()
    def generation_is_refused_exactly_while_the_model_says_the_gate_is_closed(self) -> None:
        """After every step, on every project. This app has no model: past an open gate it
        answers 503 (and stores nothing), so 503 and 409 tell open and closed apart."""
        for project in self.projects:
            response = self._api("post", f"/projects/{project.project_id}/generations", {})
            if project.gate_open():
                assert response.status_code == 503, response.text
            else:
                self._assert_refused(project, response)

    def _assert_refused(self, project: ProjectModel, response: Any) -> None:
        assert response.status_code == 409, response.text
        problem = response.json()
        assert [i["item_id"] for i in problem["missing"]] == project.missing()
        assert [i["item_id"] for i in problem["stale"]] == project.stale()

    def teardown(self) -> None:
        """A refused attempt stored nothing: each project has exactly the accepted generations."""
        for project in self.projects:
            stored = self._api("get", f"/projects/{project.project_id}/generations").json()
            assert len(stored) == project.generations


@pytest.fixture
def clients(settings: Settings, model_settings: Settings, llm: ScriptedLLM) -> Iterator[Clients]:
    """Two apps on the same database: one without a model, one with the scripted server."""
    app: FastAPI = create_app(settings)
    with TestClient(app) as client, TestClient(create_app(model_settings)) as model_client:
        yield Clients(client, model_client, make_actor(app.state.db, Role.MEMBER), llm)


# Passing takes seconds; a failure is shrunk through many API calls, which can take minutes.
@pytest.mark.timeout(900)
def test_no_sequence_of_api_calls_starts_a_generation_while_the_gate_is_closed(
    clients: Clients,
) -> None:
    class GateMachineOnTheseClients(GateMachine):
        def __init__(self) -> None:
            super().__init__(clients)

    run_state_machine_as_test(
        GateMachineOnTheseClients,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
