"""SQL statements per page and per API read must not grow with the rows they show.

Each test builds a small and a larger data set (through the API where it can write them;
debate messages and generations need a model, so those rows are written as a model's
replies would be) and reads the same route over both: the statement counts must match.
"""

from dataclasses import dataclass

from fastapi.testclient import TestClient

from app.db import Database
from app.models import Generation, Message, Thread
from app.models.enums import Category, GenerationStatus, MessageStatus, Role
from app.services import users
from tests import factories
from tests.conftest import Actor, make_actor
from tests.perf.test_statement_counts import counted_statements
from tests.web.test_pages import sign_in

SMALL, LARGE = 1, 5


def _count(client: TestClient, db: Database, path: str, actor: Actor) -> int:
    """Statements of one read of ``path``, after a first read has warmed it (a token's use
    is recorded at most every few minutes, so only the first read writes it)."""
    assert client.get(path, headers=actor.headers).status_code == 200, path
    with counted_statements(db) as statements:
        response = client.get(path, headers=actor.headers)
    assert response.status_code == 200, response.text
    return len(statements)


# --- a reviewed project, of a given size --------------------------------------------------


@dataclass(frozen=True)
class Reviewed:
    """A project where ``size`` sets how many of everything there are."""

    project_id: int
    item_id: int  # its first item, with ``size`` decision revisions
    thread_id: int  # its longest debate
    generation_id: int
    first_generation_id: int
    meeting_id: int  # an ended meeting, with ``size`` attendees, items and votes

    def path(self, template: str) -> str:
        return template.format(
            p=self.project_id,
            item=self.item_id,
            thread=self.thread_id,
            generation=self.generation_id,
            first_generation=self.first_generation_id,
            meeting=self.meeting_id,
        )


def _reviewed(client: TestClient, db: Database, owner: Actor, size: int) -> Reviewed:
    project_id = int(factories.create_project(client, owner, name=f"Size {size}")["id"])
    for number in range(size):
        body = {"category": "load", "title": f"Extra {number}", "question": "What then?"}
        url = f"/api/v1/projects/{project_id}/checklist"
        assert client.post(url, json=body, headers=owner.headers).status_code == 201
    # Different people at each turn: reading a user per row would hide behind the session's
    # identity map if one person did everything.
    people = [owner, *(make_actor(db, Role.MEMBER) for _ in range(size))]
    for revision in range(size):
        factories.decide_all(client, people[revision % len(people)], project_id)
    meeting_id = 0
    for number in range(size):
        meeting_id = _meeting(client, people[number % len(people)], people, project_id, size)
    thread_id = _debates(client, db, people, project_id, size)
    generation_ids = _generations(client, db, people, project_id, size)
    items = factories.checklist(client, owner, project_id)
    return Reviewed(
        project_id, items[0]["id"], thread_id, generation_ids[-1], generation_ids[0], meeting_id
    )


def _meeting(
    client: TestClient, presenter: Actor, people: list[Actor], project_id: int, size: int
) -> int:
    """An ended meeting: everyone joins, ``size`` items are shown, voted on and decided."""
    started = client.post(f"/api/v1/projects/{project_id}/meetings", headers=presenter.headers)
    assert started.status_code == 201, started.text
    meeting_id = int(started.json()["id"])
    for person in people:
        url = f"/api/v1/meetings/{meeting_id}/join"
        assert client.post(url, headers=person.headers).status_code == 200
    for item in factories.checklist(client, presenter, project_id)[:size]:
        body = {"item_id": item["id"]}
        url = f"/api/v1/meetings/{meeting_id}/current-item"
        assert client.post(url, json=body, headers=presenter.headers).status_code == 200
        for person in people:
            vote = {"item_id": item["id"], "vote": "agree"}
            url = f"/api/v1/meetings/{meeting_id}/votes"
            assert client.post(url, json=vote, headers=person.headers).status_code == 200
        decision = {
            "status": "decided",
            "summary": "Agreed in the room",
            "rationale": "Everyone voted for it.",
            "version": item["decision"]["version"],
        }
        url = f"/api/v1/meetings/{meeting_id}/items/{item['id']}/decision"
        assert client.put(url, json=decision, headers=presenter.headers).status_code == 200
    ended = client.post(f"/api/v1/meetings/{meeting_id}/end", headers=presenter.headers)
    assert ended.status_code == 200, ended.text
    return meeting_id


def _debates(
    client: TestClient, db: Database, people: list[Actor], project_id: int, size: int
) -> int:
    """``size`` threads, each of ``size`` turns by different people, answered by two models;
    returns the last thread's id."""
    items = factories.checklist(client, people[0], project_id)
    thread_id = 0
    with db.transaction() as session:
        for number in range(size):
            thread = Thread(
                project_id=project_id,
                checklist_item_id=items[number]["id"],
                mode="failure_walk",
                models=["model-a", "model-b"],
                title=f"Thread {number}",
                created_by_id=people[number % len(people)].user_id,
            )
            session.add(thread)
            session.flush()
            thread_id = thread.id
            for turn in range(1, size + 1):
                author = people[turn % len(people)]
                session.add(_message(thread.id, turn, "user", author_id=author.user_id))
                for model in thread.models:
                    session.add(_message(thread.id, turn, "assistant", model=model))
    return thread_id


def _message(thread_id: int, turn: int, role: str, **fields: object) -> Message:
    model_fields: dict[str, object] = {}
    if role == "assistant":
        model_fields = {
            "requested_model": fields["model"],
            "prompt": [{"role": "user", "content": "How does it fail?"}],
            "tokens_in": 100,
            "tokens_out": 50,
            "cost": 0.01,
            "flags": ["position_changed", "capitulated"] if turn > 1 else [],
            "judgement": {"new_argument": False, "tokens_in": 10, "cost": 0.001},
        }
    return Message(
        thread_id=thread_id,
        turn=turn,
        role=role,
        content=f"Turn {turn}: the queue is down.",
        status=MessageStatus.COMPLETE,
        **model_fields,
        **fields,
    )


def _generations(
    client: TestClient, db: Database, people: list[Actor], project_id: int, size: int
) -> list[int]:
    """``size`` + 1 finished code generations (a comparison needs two), based on the
    current decisions."""
    items = factories.checklist(client, people[0], project_id)
    based_on = [
        {
            "decision_id": i["decision"]["id"],
            "item_id": i["id"],
            "revision": i["decision"]["revision"],
        }
        for i in items
    ]
    ids = []
    with db.transaction() as session:
        for number in range(size + 1):
            generation = Generation(
                project_id=project_id,
                status=GenerationStatus.COMPLETE,
                model="model-a",
                content=f"print({number})\n",
                based_on=based_on,
                tokens_in=1000,
                tokens_out=500,
                cost=0.1,
                created_by_id=people[number % len(people)].user_id,
            )
            session.add(generation)
            session.flush()
            ids.append(generation.id)
    return ids


# --- project reads, over a small and a larger project -----------------------------------

API_READS = [
    "/api/v1/projects/{p}/threads",
    "/api/v1/threads/{thread}",
    "/api/v1/projects/{p}/generations",
    "/api/v1/generations/{generation}",
    "/api/v1/generations/{first_generation}/compare/{generation}",
    "/api/v1/projects/{p}/models",
    "/api/v1/projects/{p}/usage",
    "/api/v1/meetings/{meeting}",
    "/api/v1/checklist-items/{item}/decisions",
    "/api/v1/projects/{p}/exports/design-pack.md",
    "/api/v1/projects/{p}/exports/spec-kit.zip",
    "/api/v1/projects/{p}/exports/adr.zip",
    "/api/v1/projects/{p}/exports/report.html",
    "/api/v1/projects/{p}/exports/checklist.csv",
    "/api/v1/projects/{p}/export",
    "/api/v1/projects/{p}",
]
PAGES = [
    "/threads/{thread}",
    "/projects/{p}/threads/new",
    "/generations/{generation}",
    "/generations/{generation}/code.txt",
    "/projects/{p}/meeting",
    "/meetings/{meeting}",
    "/meetings/{meeting}/minutes.md",
    "/items/{item}",
    "/items/{item}/row",
    "/projects/{p}/gate",
    "/projects/{p}/exports/design-pack.md",
    "/projects/{p}/exports/spec-kit.zip",
    "/projects/{p}/exports/adr.zip",
    "/projects/{p}/exports/report.html",
    "/projects/{p}/exports/checklist.csv",
]


def _grown(
    client: TestClient,
    db: Database,
    reader: Actor,
    routes: list[str],
    small: Reviewed,
    large: Reviewed,
) -> dict[str, tuple[int, int]]:
    """Each route whose count differs between the two projects, with both counts."""
    counts = {
        route: (
            _count(client, db, small.path(route), reader),
            _count(client, db, large.path(route), reader),
        )
        for route in routes
    }
    return {route: pair for route, pair in counts.items() if pair[0] != pair[1]}


def test_api_reads_cost_the_same_however_much_the_project_holds(
    client: TestClient, db: Database, member: Actor
) -> None:
    small = _reviewed(client, db, member, SMALL)
    large = _reviewed(client, db, member, LARGE)
    assert _grown(client, db, member, API_READS, small, large) == {}


def test_pages_cost_the_same_however_much_the_project_holds(
    client: TestClient, db: Database, member: Actor
) -> None:
    small = _reviewed(client, db, member, SMALL)
    large = _reviewed(client, db, member, LARGE)
    sign_in(client, member.email)
    assert _grown(client, db, member, PAGES, small, large) == {}


# --- a meeting while it runs -----------------------------------------------------------


def _running_meeting(
    client: TestClient, db: Database, presenter: Actor, size: int
) -> tuple[int, int]:
    """A project's running meeting: ``size`` more people in it, ``size`` items shown, every
    attendee's vote on the item on screen; returns the project's and the meeting's ids."""
    project_id = int(factories.create_project(client, presenter)["id"])
    people = [presenter, *(make_actor(db, Role.MEMBER) for _ in range(size))]
    for person in people:
        factories.decide_all(client, person, project_id)
    started = client.post(f"/api/v1/projects/{project_id}/meetings", headers=presenter.headers)
    meeting_id = int(started.json()["id"])
    for person in people[1:]:
        url = f"/api/v1/meetings/{meeting_id}/join"
        assert client.post(url, headers=person.headers).status_code == 200
    shown = factories.checklist(client, presenter, project_id)[:size]
    for item in shown:
        url = f"/api/v1/meetings/{meeting_id}/current-item"
        response = client.post(url, json={"item_id": item["id"]}, headers=presenter.headers)
        assert response.status_code == 200
    for person in people:
        vote = {"item_id": shown[-1]["id"], "vote": "disagree"}
        url = f"/api/v1/meetings/{meeting_id}/votes"
        assert client.post(url, json=vote, headers=person.headers).status_code == 200
    _debates(client, db, people, project_id, size)
    return project_id, meeting_id


def test_a_running_meeting_costs_the_same_however_many_attend_and_vote(
    client: TestClient, db: Database, member: Actor
) -> None:
    sign_in(client, member.email)
    counts = []
    for size in (SMALL, LARGE):
        project_id, meeting_id = _running_meeting(client, db, member, size)
        counts.append(
            (
                _count(client, db, f"/projects/{project_id}/meeting", member),
                _count(client, db, f"/api/v1/meetings/{meeting_id}", member),
            )
        )
    assert counts[0] == counts[1]


def _statements_to_end(client: TestClient, db: Database, presenter: Actor, size: int) -> int:
    """Statements of ending a meeting in which ``size`` people each recorded a decision."""
    project_id = int(factories.create_project(client, presenter)["id"])
    people = [make_actor(db, Role.MEMBER) for _ in range(size)]
    started = client.post(f"/api/v1/projects/{project_id}/meetings", headers=presenter.headers)
    meeting_id = int(started.json()["id"])
    items = factories.checklist(client, presenter, project_id)
    for person, item in zip(people, items, strict=False):
        assert client.post(f"/api/v1/meetings/{meeting_id}/join", headers=person.headers)
        decision = {"status": "decided", "summary": "Agreed", "rationale": "In the room."}
        url = f"/api/v1/meetings/{meeting_id}/items/{item['id']}/decision"
        response = client.put(url, json=decision, headers=person.headers)
        assert response.status_code == 200, response.text
    with counted_statements(db) as statements:
        ended = client.post(f"/api/v1/meetings/{meeting_id}/end", headers=presenter.headers)
    assert ended.status_code == 200, ended.text
    assert ended.json()["minutes"].count("revision 1, decided by") == size
    return len(statements)


def test_ending_a_meeting_costs_the_same_however_many_people_decided_in_it(
    client: TestClient, db: Database, member: Actor
) -> None:
    assert _statements_to_end(client, db, member, SMALL) == _statements_to_end(
        client, db, member, LARGE
    )


# --- reads of the whole instance, before and after it grows -----------------------------


def _draft(client: TestClient, author: Actor, proposals: int) -> int:
    body = {"request": "Add a retrying webhook sender"}
    created = client.post("/api/v1/drafts", json=body, headers=author.headers)
    assert created.status_code == 201, created.text
    draft_id = int(created.json()["id"])
    for number in range(proposals):
        proposal = {"category": "resilience", "title": f"Retry {number}", "question": "How?"}
        url = f"/api/v1/drafts/{draft_id}/proposals"
        assert client.post(url, json=proposal, headers=author.headers).status_code == 201
    return draft_id


def test_drafts_cost_the_same_however_many_there_are_and_however_many_proposals(
    client: TestClient, db: Database, member: Actor
) -> None:
    small = _draft(client, member, proposals=SMALL)
    small_counts = [
        _count(client, db, "/api/v1/drafts", member),
        _count(client, db, f"/api/v1/drafts/{small}", member),
    ]
    large = [_draft(client, member, proposals=LARGE) for _ in range(LARGE)][-1]
    large_counts = [
        _count(client, db, "/api/v1/drafts", member),
        _count(client, db, f"/api/v1/drafts/{large}", member),
    ]
    assert small_counts == large_counts


def _template(client: TestClient, author: Actor, key: str, items: int) -> None:
    """A team template with an item per category (as every template must have), and
    ``items`` more."""
    categories = [*Category, *[Category.LOAD] * items]
    body = {
        "key": key,
        "name": f"Team template {key}",
        "items": [
            {"category": category, "title": f"Item {number}", "question": "What then?"}
            for number, category in enumerate(categories)
        ],
    }
    response = client.post("/api/v1/templates", json=body, headers=author.headers)
    assert response.status_code == 201, response.text


def test_templates_cost_the_same_however_many_the_team_added(
    client: TestClient, db: Database, member: Actor
) -> None:
    sign_in(client, member.email)
    _template(client, member, "team-0", items=SMALL)
    routes = ["/api/v1/templates", "/api/v1/templates/team-0", "/projects/new"]
    small_counts = [_count(client, db, route, member) for route in routes]
    for number in range(1, LARGE + 1):
        _template(client, member, f"team-{number}", items=LARGE)
    routes[1] = f"/api/v1/templates/team-{LARGE}"
    assert [_count(client, db, route, member) for route in routes] == small_counts


def test_users_and_tokens_cost_the_same_however_many_there_are(
    client: TestClient, db: Database, admin: Actor
) -> None:
    sign_in(client, admin.email)
    routes = ["/api/v1/tokens", "/admin/users", "/admin/tokens"]
    small_counts = [_count(client, db, route, admin) for route in routes]
    with db.transaction() as session:
        owner = users.get_user(session, admin.user_id)
        for number in range(LARGE):
            users.create_token(session, user=owner, label=f"admin {number}")
    for _ in range(LARGE):
        make_actor(db, Role.MEMBER)  # a user with a token of their own
    assert [_count(client, db, route, admin) for route in routes] == small_counts


def test_a_whole_backup_costs_the_same_however_many_projects_and_drafts(
    client: TestClient, db: Database, admin: Actor, member: Actor
) -> None:
    _reviewed(client, db, member, SMALL)
    _draft(client, member, proposals=SMALL)
    _template(client, member, "team-0", items=SMALL)
    small_count = _count(client, db, "/api/v1/export", admin)
    _reviewed(client, db, member, LARGE)
    _reviewed(client, db, member, SMALL)
    for number in range(1, LARGE + 1):
        _draft(client, member, proposals=LARGE)
        _template(client, member, f"team-{number}", items=LARGE)
    assert _count(client, db, "/api/v1/export", admin) == small_count
