"""A reviewed project built through the API: every item decided, one decision superseded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Actor


@dataclass
class Reviewed:
    project: dict[str, Any]
    decisions: list[dict[str, Any]]  # the current decision of each item, in checklist order
    superseded: dict[str, Any]  # the revision the second decision replaced


def reviewed_project(
    client: TestClient, actor: Actor, template: str = "rabbitmq-consumer"
) -> Reviewed:
    project = factories.create_project(client, actor, template=template, constraints="Node.js 22")
    items = factories.checklist(client, actor, project["id"])
    decisions = [
        factories.decide(
            client,
            actor,
            item,
            summary=f"Decision {n} on {item['title']}",
            rationale=f"Rationale {n}: it keeps {item['category']} under control",
            alternatives=[f"Alternative {n}a", f"Alternative {n}b"],
        )
        for n, item in enumerate(items, start=1)
    ]
    decisions[-1] = factories.decide(
        client,
        actor,
        {**items[-1], "decision": decisions[-1]},
        status="accepted_risk",
        summary="Accept losing in-flight work on a crash",
        rationale="Upstream replays anything unacknowledged",
        alternatives=["Write-ahead log of every delivery"],
    )
    superseded = decisions[1]
    decisions[1] = factories.decide(
        client,
        actor,
        {**items[1], "decision": superseded},
        summary="Reconnect with capped exponential backoff and re-declare the topology",
        rationale="Broker blips last seconds; a crash loop would lose the prefetch buffer",
        alternatives=["Crash and let the orchestrator restart us", "Retry forever without backoff"],
    )
    return Reviewed(project, decisions, superseded)
