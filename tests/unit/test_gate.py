"""The gate rule, as a truth table: pure (``evaluate``) and through the database (``gate``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import NotFound
from app.models import ChecklistItem, Decision, Project, User
from app.models.enums import Category, DecisionStatus
from app.schemas.checklist import ChecklistItemCreate, DecisionWrite
from app.schemas.project import ProjectCreate, ProjectUpdate
from app.services import decisions, projects
from app.services.decisions import ItemWithDecision
from app.services.gate import GateItem, GateState, evaluate, gate, gate_of, gates
from tests.conftest import Actor

DESIGN_VERSION = 3


def _item(item_id: int, category: Category = Category.LOAD) -> ChecklistItem:
    return ChecklistItem(id=item_id, category=category, title=f"item {item_id}", question="?")


def _entry(
    item_id: int,
    *,
    decided_at_version: int | None,
    status: DecisionStatus = DecisionStatus.DECIDED,
) -> ItemWithDecision:
    """An item whose current decision was made at ``decided_at_version`` (None: undecided)."""
    decision = None
    if decided_at_version is not None:
        decision = Decision(
            item_id=item_id,
            revision=1,
            status=status,
            summary="s",
            rationale="r",
            design_version=decided_at_version,
        )
    return ItemWithDecision(_item(item_id), decision, DESIGN_VERSION)


def _ids(items: tuple[GateItem, ...]) -> list[int]:
    return [i.item_id for i in items]


# (what the row pins, items as (id, decided at design version or None, status),
#  open, missing ids, stale ids)
TRUTH_TABLE = [
    ("no items", [], False, [], []),
    ("all missing", [(1, None), (2, None), (3, None)], False, [1, 2, 3], []),
    ("some missing", [(1, 3), (2, None), (3, 3)], False, [2], []),
    ("all decided", [(1, 3), (2, 3), (3, 3)], True, [], []),
    ("one stale after a design edit", [(1, 3), (2, 2), (3, 3)], False, [], [2]),
    ("missing and stale together", [(1, None), (2, 1), (3, 3)], False, [1], [2]),
    ("re-decided at the current version", [(1, 3), (2, 3)], True, [], []),
]


@pytest.mark.parametrize(
    ("rows", "is_open", "missing", "stale"),
    [row[1:] for row in TRUTH_TABLE],
    ids=[row[0] for row in TRUTH_TABLE],
)
def test_gate_truth_table(
    rows: list[tuple[int, int | None]], is_open: bool, missing: list[int], stale: list[int]
) -> None:
    state = evaluate([_entry(i, decided_at_version=v) for i, v in rows])
    assert state.open is is_open
    assert _ids(state.missing) == missing
    assert _ids(state.stale) == stale
    assert state.total == len(rows)
    assert state.decided == len(rows) - len(missing) - len(stale)


@pytest.mark.parametrize("status", list(DecisionStatus))
def test_every_decision_status_counts_as_decided(status: DecisionStatus) -> None:
    entries = [_entry(1, decided_at_version=3), _entry(2, decided_at_version=3, status=status)]
    assert evaluate(entries).open is True


def test_a_decision_made_on_a_newer_design_version_is_not_stale() -> None:
    # Only an older design version makes a decision stale.
    assert evaluate([_entry(1, decided_at_version=DESIGN_VERSION + 1)]).open is True


def test_closed_gate_explains_itself() -> None:
    assert "empty" in evaluate([]).reason()
    state = evaluate([_entry(1, decided_at_version=None), _entry(2, decided_at_version=1)])
    assert "1 item(s) have no decision" in state.reason()
    assert "1 decision(s) are stale" in state.reason()


# The same rule through the database.


def _db_gate(session: Session, project: Project) -> GateState:
    """The gate as pages read it (from a loaded project), as the API's gate check does
    (from the id alone, in one statement) and as the project list does (many projects in
    one statement): all must give the same answer."""
    state = gate(session, project)
    assert gate_of(session, project.id) == state
    assert gates(session, [project]) == {project.id: state}
    return state


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.transaction() as session:
        yield session


@pytest.fixture
def user(session: Session, member: Actor) -> User:
    found = session.get(User, member.user_id)
    assert found is not None
    return found


@pytest.fixture
def project(session: Session, user: User) -> Project:
    data = ProjectCreate(name="Gate", problem="p", architecture="a", data_model="d")
    return projects.create_project(session, data=data, actor=user)


def _decide(
    session: Session,
    user: User,
    entry: ItemWithDecision,
    status: DecisionStatus = DecisionStatus.DECIDED,
) -> None:
    version = entry.decision.revision if entry.decision else 0
    data = DecisionWrite(status=status, summary="s", rationale="r", version=version)
    decisions.record_decision(session, item_id=entry.item.id, data=data, actor=user)


def _decide_all(session: Session, user: User, project: Project) -> None:
    for entry in decisions.checklist(session, project):
        _decide(session, user, entry)


def _edit(session: Session, user: User, project: Project, **fields: str) -> None:
    data = ProjectUpdate(version=project.version, **fields)
    projects.update_project(session, project_id=project.id, data=data, actor=user)


def test_db_gate_of_a_project_without_items_is_closed(
    session: Session, user: User, project: Project
) -> None:
    for item in session.query(ChecklistItem).filter_by(project_id=project.id):
        session.delete(item)
    session.flush()
    state = _db_gate(session, project)
    assert state.open is False
    assert state.total == 0


def test_db_gate_new_project_is_closed_with_every_item_missing(
    session: Session, project: Project
) -> None:
    state = _db_gate(session, project)
    items = decisions.checklist(session, project)
    assert state.open is False
    assert _ids(state.missing) == [e.item.id for e in items]
    assert {i.category for i in state.missing} == {c.value for c in Category}
    assert state.stale == ()


def test_db_gate_some_missing(session: Session, user: User, project: Project) -> None:
    entries = decisions.checklist(session, project)
    for entry in entries[:4]:
        _decide(session, user, entry)
    state = _db_gate(session, project)
    assert state.open is False
    assert _ids(state.missing) == [e.item.id for e in entries[4:]]


def test_db_gate_opens_when_all_decided(session: Session, user: User, project: Project) -> None:
    _decide_all(session, user, project)
    state = _db_gate(session, project)
    assert (state.open, state.missing, state.stale) == (True, (), ())


def test_db_gate_accepted_risk_and_not_applicable_count_as_decided(
    session: Session, user: User, project: Project
) -> None:
    entries = decisions.checklist(session, project)
    statuses = [DecisionStatus.ACCEPTED_RISK, DecisionStatus.NOT_APPLICABLE]
    for index, entry in enumerate(entries):
        _decide(session, user, entry, statuses[index % 2])
    assert _db_gate(session, project).open is True


def test_db_gate_design_edit_makes_every_decision_stale_and_redeciding_one_clears_it(
    session: Session, user: User, project: Project
) -> None:
    _decide_all(session, user, project)
    _edit(session, user, project, architecture="A different architecture")
    entries = decisions.checklist(session, project)
    state = _db_gate(session, project)
    assert state.open is False
    assert _ids(state.stale) == [e.item.id for e in entries]
    assert state.missing == ()
    _decide(session, user, entries[0])
    assert entries[0].item.id not in _ids(_db_gate(session, project).stale)
    for entry in entries[1:]:
        _decide(session, user, entry)
    assert _db_gate(session, project).open is True


def test_db_gate_custom_item_added_after_all_decided_closes_it(
    session: Session, user: User, project: Project
) -> None:
    _decide_all(session, user, project)
    assert _db_gate(session, project).open is True
    data = ChecklistItemCreate(category=Category.LOAD, title="Batch import", question="How big?")
    added = decisions.add_item(session, project_id=project.id, data=data, actor=user)
    state = _db_gate(session, project)
    assert state.open is False
    assert _ids(state.missing) == [added.item.id]
    _decide(session, user, added)
    assert _db_gate(session, project).open is True


def test_db_gate_of_an_unknown_project_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="Project 987654 does not exist"):
        gate_of(session, 987654)


def test_db_gates_of_many_projects_give_each_its_own_gate(
    session: Session, user: User, project: Project
) -> None:
    """Open, stale, undecided and empty side by side: no item counts for another project."""
    listed = [project]
    for name in ("Stale", "Undecided", "Empty"):
        data = ProjectCreate(name=name, problem="p", architecture="a", data_model="d")
        listed.append(projects.create_project(session, data=data, actor=user))
    opened, stale, _undecided, empty = listed
    for decided in (opened, stale):
        _decide_all(session, user, decided)
    _edit(session, user, stale, architecture="A different architecture")
    for item in session.query(ChecklistItem).filter_by(project_id=empty.id):
        session.delete(item)
    session.flush()
    states = gates(session, listed)
    assert states == {each.id: gate(session, each) for each in listed}
    assert [(s.open, len(s.missing), len(s.stale), s.total) for s in states.values()] == [
        (True, 0, 0, 6),
        (False, 0, 6, 6),
        (False, 6, 0, 6),
        (False, 0, 0, 0),
    ]
    assert gates(session, []) == {}
