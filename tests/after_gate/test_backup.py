"""Backup and restore: a lossless round trip between SQLite and PostgreSQL, and refusals
that write nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from app import migrate
from app.db import Base, Database
from app.models import ChecklistTemplate
from app.schemas.backup import BackupDocument
from app.schemas.common import MAX_JSON_DEPTH
from app.services import backup
from app.services.backup import COLUMNS
from app.services.templates import builtin_catalog
from tests.after_gate.cli import designgate
from tests.after_gate.stored import populated
from tests.conftest import Actor, is_postgres, make_settings

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Secrets and sign-in throttling belong to one instance; a restored instance starts them afresh.
NOT_BACKED_UP = {"api_tokens", "ended_web_sessions", "instance_settings", "login_attempts"}
# Columns a backup maps rather than copies (or, for password hashes, the session epoch that
# ends a user's cookie sessions, the review and debate revisions that the restoring
# database's own triggers count afresh and the server process running unfinished work,
# which belongs to the backed-up instance, leaves out on purpose).
MAPPED_APART = {
    "messages.runner",
    "generations.runner",
    "drafts.runner",
    "audit_events.entity_id",
    "meetings.covered_item_ids",
    "decisions.attendees",
    "generations.based_on",
    "users.password_hash",
    "users.session_epoch",
    "projects.review_revision",
    "projects.debate_revision",
}


@pytest.fixture
def other_backend_url(tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database on the other backend than the suite's."""
    if is_postgres():
        url = f"sqlite:///{tmp_path / 'other.db'}"
        migrate.upgrade(url)
        yield url
        return
    yield from _scratch_postgres()


def _scratch_postgres() -> Iterator[str]:
    admin = create_engine(
        LOCAL_POSTGRES, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"dg_backup_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL answers on 127.0.0.1:5432 for the round trip ({exc.orig})")
    url = LOCAL_POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _export(database: Database, project_id: int | None = None) -> BackupDocument:
    with database.transaction(write=False) as session:
        return backup.export_backup(session, project_id=project_id)


def _import(database: Database, document: BackupDocument | str) -> None:
    raw = document if isinstance(document, str) else document.model_dump_json()
    with database.transaction() as session:
        backup.import_backup(session, raw=raw, actor=None, catalog=builtin_catalog())


def _comparable(document: BackupDocument) -> dict[str, Any]:
    """The document without its timestamp and without the audit of the imports themselves."""
    data = document.model_dump(mode="json", exclude={"exported_at"})
    data["audit_events"] = [e for e in data["audit_events"] if e["action"] != "backup.imported"]
    return data


def _row_counts(database: Database) -> dict[str, int]:
    with database.transaction(write=False) as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def test_every_column_of_every_table_is_carried_by_a_backup() -> None:
    for table in Base.metadata.sorted_tables:
        if table.name in NOT_BACKED_UP:
            continue
        links = {c.name for c in table.columns if c.foreign_keys or c.primary_key}
        apart = {name.split(".")[1] for name in MAPPED_APART if name.startswith(f"{table.name}.")}
        missing = {c.name for c in table.columns} - links - apart - set(COLUMNS[table.name])
        assert not missing, f"{table.name} columns a backup would lose: {missing}"


def test_round_trip_between_sqlite_and_postgresql_compares_equal(
    client: TestClient,
    db: Database,
    member: Actor,
    admin: Actor,
    other_backend_url: str,
    scratch_database_url: str,
) -> None:
    populated(client, db, member, admin)
    first = _export(db)
    other = Database(make_settings(other_backend_url))
    migrate.upgrade(scratch_database_url)
    back = Database(make_settings(scratch_database_url))
    try:
        _import(other, first)
        second = _export(other)
        _import(back, second)
        third = _export(back)
    finally:
        other.dispose()
        back.dispose()

    assert _comparable(second) == _comparable(first)
    assert _comparable(third) == _comparable(first)
    assert {e.action for e in third.audit_events}.issuperset({"backup.imported"})
    project = first.projects[0]
    assert first.drafts[0].project == first.projects[1].ref
    assert len(project.threads[0].messages) == 2
    generation = project.generations[0]
    assert (generation.tokens_in, generation.tokens_out, generation.cost) == (900, 310, 0.0123)
    assert generation.attempts[0]["kind"] == "empty"
    assert project.meetings[0].votes
    assert project.items[1].decisions[-1].attendees[0]["user_email"] == member.email


def test_a_project_export_imports_beside_the_original_as_a_copy(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    project_id = populated(client, db, member, admin)
    exported = client.get(f"/api/v1/projects/{project_id}/export", headers=member.headers)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]

    imported = client.post("/api/v1/import", content=exported.content, headers=admin.headers)

    assert imported.status_code == 200, imported.text
    summary = imported.json()
    copy_id = summary["projects"]["1"]
    assert copy_id != project_id
    assert summary["users_created"] == []
    original = BackupDocument.model_validate_json(exported.content)
    assert _comparable(_export(db, copy_id)) == _comparable(original)
    assert "password" not in exported.text
    assert "token_sha256" not in exported.text


def test_only_admins_export_and_import_everything(
    client: TestClient, member: Actor, admin: Actor
) -> None:
    assert client.get("/api/v1/export", headers=member.headers).status_code == 403
    assert client.post("/api/v1/import", content=b"{}", headers=member.headers).status_code == 403
    everything = client.get("/api/v1/export", headers=admin.headers)
    assert everything.status_code == 200
    assert everything.json()["format"] == "designgate-backup"
    assert everything.json()["version"] == 1


def test_a_truncated_backup_is_refused_and_writes_nothing(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    populated(client, db, member, admin)
    whole = _export(db).model_dump_json()
    before = _row_counts(db)

    response = client.post(
        "/api/v1/import", content=whole[: len(whole) // 2], headers=admin.headers
    )

    assert response.status_code == 422
    assert "truncated" in response.json()["detail"]
    assert _row_counts(db) == before


def test_a_backup_that_fails_half_way_writes_nothing(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    populated(client, db, member, admin)
    document = json.loads(_export(db).model_dump_json())
    document["projects"][0]["generations"][0]["based_on"][0]["decision"] = 999
    before = _row_counts(db)

    response = client.post("/api/v1/import", json=document, headers=admin.headers)

    assert response.status_code == 422
    assert "projects[0].generations[0].based_on[0].decision" in response.json()["detail"]
    assert _row_counts(db) == before


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"format": "something-else"}, "not a designgate backup"),
        ({"version": 99}, "version 99 cannot be read"),
        ({"projects": [{"ref": 1}]}, "projects[0].name"),
    ],
)
def test_a_backup_of_the_wrong_shape_is_refused_naming_what_is_wrong(
    client: TestClient, admin: Actor, change: dict[str, Any], words: str
) -> None:
    document = {
        "format": "designgate-backup",
        "version": 1,
        "exported_at": "2026-01-01T00:00:00Z",
        "scope": "all",
        "users": [],
        "projects": [],
        **change,
    }

    response = client.post("/api/v1/import", json=document, headers=admin.headers)

    assert response.status_code == 422
    assert words in response.json()["detail"]


def _first_decided_item(document: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = next(i for i in document["projects"][0]["items"] if i["decisions"])
    return item


def _first_decision(document: dict[str, Any]) -> dict[str, Any]:
    decision: dict[str, Any] = _first_decided_item(document)["decisions"][0]
    return decision


def _first_message(document: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = document["projects"][0]["threads"][0]["messages"][0]
    return message


def _repeat_first_revision(document: dict[str, Any]) -> None:
    _first_decided_item(document)["decisions"].append(dict(_first_decision(document)))


def _first_template(document: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = document["templates"][0]
    return template


def _new_template(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``change`` made to the backup's template under a key not stored here yet (under its
    own key the import refuses it only as different from the one stored)."""

    def changed(document: dict[str, Any]) -> None:
        _first_template(document)["key"] = "imported-consumer"
        change(_first_template(document))

    return changed


def _without_recovery_items(template: dict[str, Any]) -> None:
    template["items"] = [i for i in template["items"] if i["category"] != "recovery"]


# Found by tests/hardening/test_import_fuzz.py: each of these was a 500 on PostgreSQL (a
# value its columns cannot hold, a row its unique constraints refuse) or stored a row that
# the project's usage or every page showing it then failed on (SQLite).
@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: _first_message(d).update(role="moderator"), "role: Input should be"),
        (lambda d: _first_decision(d).update(status=""), "status: Input should be"),
        (lambda d: d["projects"][0].update(name="n" * 201), "projects[0].name: String should"),
        (lambda d: _first_decision(d).update(revision=2**31), "revision: Input should be less"),
        (_repeat_first_revision, "decision revision 1 appears more than once"),
        # Each of these was stored: a project at version 0 could never be edited through the
        # API again, and a revision below 1 sorted under those the app added after it.
        (lambda d: d["projects"][0].update(version=0), "projects[0].version: Input should be"),
        (lambda d: d["projects"][0].update(design_version=0), "design_version: Input should"),
        (lambda d: _first_decision(d).update(revision=0), "revision: Input should be greater"),
        (lambda d: _first_decision(d).update(revision=-3), "revision: Input should be greater"),
        (lambda d: _first_decision(d).update(design_version=-1), "design_version: Input"),
        (lambda d: _first_decided_item(d).update(position=-7), "position: Input should be"),
        (lambda d: _first_message(d).update(turn=0), "turn: Input should be greater"),
        (lambda d: _first_message(d).update(tokens_in=-5), "tokens_in: Input should be greater"),
        (lambda d: _first_message(d).update(cost=float("nan")), "cost: Input should be a finite"),
        # Each of these was stored, and then every list of templates (the API's, the
        # new-project page's) was a 500: stored items are read as the catalog reads them.
        (_new_template(lambda t: t["items"].append({})), "templates[0].items[6].category: Field"),
        (_new_template(lambda t: t["items"][0].update(category="x")), "items[0].category: Input"),
        (_new_template(_without_recovery_items), "every category; missing: recovery"),
        (_new_template(lambda t: t.update(key="Team X")), "templates[0].key: String should"),
        (_new_template(lambda t: t.update(items=[])), "templates[0].items: List should have"),
    ],
)
def test_a_backup_with_values_its_tables_cannot_hold_is_refused_and_writes_nothing(
    client: TestClient,
    db: Database,
    member: Actor,
    admin: Actor,
    change: Callable[[dict[str, Any]], None],
    words: str,
) -> None:
    populated(client, db, member, admin)
    document = json.loads(_export(db).model_dump_json())
    change(document)
    before = _row_counts(db)

    # As a file carries it: a lone surrogate only as an escape, which UTF-8 cannot encode.
    body = json.dumps(document, ensure_ascii=True).encode()
    response = client.post("/api/v1/import", content=body, headers=admin.headers)

    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]
    assert _row_counts(db) == before


def _nested_text(depth: int) -> str:
    """A JSON value of ``depth`` lists one inside the other (json.dumps cannot write one
    past about a thousand)."""
    return "[" * depth + '"deep"' + "]" * depth


# The first message's judgement is an object eight levels down (the document, its projects, a
# project, its threads, a thread, its messages, a message, the judgement); the value put in it
# adds its own levels.
JUDGEMENT_LEVEL = 8


def _with_nested_judgement(db: Database, depth: int) -> bytes:
    document = json.loads(_export(db).model_dump_json())
    _first_message(document)["judgement"] = {"verdict": "PLACEHOLDER"}
    return json.dumps(document).replace('"PLACEHOLDER"', _nested_text(depth)).encode()


@pytest.mark.parametrize(
    "depth",
    [MAX_JSON_DEPTH - JUDGEMENT_LEVEL + 1, 10_000],
    ids=["one-level-too-deep", "past-pythons-parser"],
)
def test_a_backup_nested_too_deep_is_refused_and_writes_nothing(
    client: TestClient, db: Database, member: Actor, admin: Actor, depth: int
) -> None:
    """Python's parser stops near a thousand levels with RecursionError: a 500."""
    populated(client, db, member, admin)
    body = _with_nested_judgement(db, depth)
    before = _row_counts(db)

    response = client.post("/api/v1/import", content=body, headers=admin.headers)

    assert response.status_code == 422, response.text
    assert "more than 64 levels deep" in response.json()["detail"]
    assert _row_counts(db) == before


def test_a_backup_nested_as_deep_as_allowed_is_imported(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    populated(client, db, member, admin)
    body = _with_nested_judgement(db, MAX_JSON_DEPTH - JUDGEMENT_LEVEL)

    response = client.post("/api/v1/import", content=body, headers=admin.headers)

    assert response.status_code == 200, response.text


def test_the_cli_refuses_a_file_nested_past_pythons_parser_without_a_traceback(
    database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "deep.json"
    file.write_text("[" * 100_000)

    refused = designgate(database_url, "import", str(file))

    assert refused.returncode == 1
    assert b"nothing was imported" in refused.stderr
    assert b"more than 64 levels deep" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_characters_no_database_can_store_are_imported_as_replacement_characters(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    """As a model's text is stored: an instance on SQLite may hold NUL in replies stored
    before that, and its backup must restore on either database. NUL was a 500 on
    PostgreSQL; a lone surrogate in a JSON column was kept there, and every read of the
    project then failed (tests/hardening/test_import_fuzz.py), as it did in a thread's
    models and a reply's flags, which had been taken as they came."""
    populated(client, db, member, admin)
    document = json.loads(_export(db).model_dump_json())
    project = document["projects"][0]
    project["problem"] = "Orders\x00 arrive."
    _first_message(document)["content"] = "One:\ud800 a consumer."
    _first_message(document)["flags"] = ["flip\ud800"]
    project["threads"][0]["models"] = ["openai/\ud800"]
    project["audit_events"][0]["after"] = {"title\x00": ["\ud800"]}
    # As a file carries it: a lone surrogate only as an escape, which UTF-8 cannot encode.
    body = json.dumps(document, ensure_ascii=True).encode()

    response = client.post("/api/v1/import", content=body, headers=admin.headers)

    assert response.status_code == 200, response.text
    copy_id = response.json()["projects"][str(project["ref"])]
    stored = _export(db, copy_id)
    assert stored.projects[0].problem == "Orders\ufffd arrive."
    assert stored.projects[0].threads[0].messages[0].content == "One:\ufffd a consumer."
    assert stored.projects[0].threads[0].messages[0].flags == ["flip\ufffd"]
    assert stored.projects[0].threads[0].models == ["openai/\ufffd"]
    threads = client.get(f"/api/v1/projects/{copy_id}/threads", headers=admin.headers)
    assert threads.status_code == 200, threads.text
    imported = stored.projects[0].audit_events
    assert any(event.after == {"title\ufffd": ["\ufffd"]} for event in imported)


def test_the_cli_exports_and_imports_and_refuses_a_truncated_file(
    client: TestClient,
    db: Database,
    member: Actor,
    admin: Actor,
    database_url: str,
    scratch_database_url: str,
    tmp_path: Path,
) -> None:
    project_id = populated(client, db, member, admin)
    exported = designgate(database_url, "export", "--all")
    assert exported.returncode == 0, exported.stderr
    file = tmp_path / "backup.json"
    file.write_bytes(exported.stdout)
    (tmp_path / "cut.json").write_bytes(exported.stdout[:-200])

    refused = designgate(scratch_database_url, "import", str(tmp_path / "cut.json"))
    restored = designgate(scratch_database_url, "import", str(file))
    one = designgate(database_url, "export", str(project_id))
    neither = designgate(database_url, "export")

    assert refused.returncode == 1
    assert b"nothing was imported" in refused.stderr
    assert b"truncated" in refused.stderr
    assert restored.returncode == 0, restored.stderr
    assert b"project 1 in the file is now project" in restored.stdout
    restored_db = Database(make_settings(scratch_database_url))
    try:
        assert _comparable(_export(restored_db)) == _comparable(
            BackupDocument.model_validate_json(exported.stdout)
        )
    finally:
        restored_db.dispose()
    assert json.loads(one.stdout)["scope"] == "project"
    assert neither.returncode == 1


def test_the_import_accepts_bodies_larger_than_the_general_limit(
    client: TestClient, admin: Actor
) -> None:
    padding = "x" * (2 * 1024 * 1024)  # twice DESIGNGATE_MAX_BODY_BYTES' default
    body = json.dumps({"format": "designgate-backup", "version": 1, "padding": padding})

    response = client.post("/api/v1/import", content=body, headers=admin.headers)

    assert response.status_code == 422  # read and judged, not refused as too large (413)
    assert response.json()["detail"].startswith("The backup is not valid at")


def test_a_stored_template_the_catalog_cannot_read_is_still_exported(
    client: TestClient, db: Database, admin: Actor
) -> None:
    """One imported before such templates were refused: its instance's backups go on working
    (the import that reads one back names it)."""
    with db.transaction() as session:
        session.add(ChecklistTemplate(key="broken", name="Broken", description="", items=[{}]))

    exported = client.get("/api/v1/export", headers=admin.headers)

    assert exported.status_code == 200, exported.text
    assert [t["items"] for t in exported.json()["templates"]] == [[{}]]


def test_a_template_with_the_key_of_a_built_in_one_is_refused_and_writes_nothing(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    """Imported, it was listed beside the built-in one under the same key, and a project
    made from that key got the built-in's items, not the ones imported."""
    populated(client, db, member, admin)
    document = json.loads(_export(db).model_dump_json())
    _first_template(document)["key"] = "generic-service"
    before = _row_counts(db)

    response = client.post("/api/v1/import", json=document, headers=admin.headers)

    assert response.status_code == 409, response.text
    assert "'generic-service' already exists here with other content" in response.json()["detail"]
    assert _row_counts(db) == before
    keys = [t["key"] for t in client.get("/api/v1/templates", headers=member.headers).json()]
    assert keys.count("generic-service") == 1


def test_a_template_the_same_as_a_built_in_one_is_skipped(
    client: TestClient, db: Database, member: Actor, admin: Actor
) -> None:
    populated(client, db, member, admin)
    document = json.loads(_export(db).model_dump_json())
    built_in = client.get("/api/v1/templates/generic-service", headers=member.headers).json()
    fields = ("key", "name", "description", "items")
    _first_template(document).update({field: built_in[field] for field in fields})
    before = _row_counts(db)

    response = client.post("/api/v1/import", json=document, headers=admin.headers)

    assert response.status_code == 200, response.text
    assert response.json()["templates_skipped"] == ["generic-service"]
    assert _row_counts(db)["checklist_templates"] == before["checklist_templates"]


def _add_audit_event(document: dict[str, Any], entity_type: str, entity: str) -> None:
    event = {"actor": None, "action": "x.y", "entity_type": entity_type, "entity": entity}
    event |= {"before": None, "after": None, "created_at": "2026-01-01T00:00:00Z"}
    document["audit_events"].append(event)


# Each was a 500 (the third on PostgreSQL only): an audit event names a user or a template by
# text, which alone in the format was taken as it came; a refusal quoting a lone surrogate
# could not be encoded, and a template looked up by such a key could not reach the database.
@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (lambda d: _add_audit_event(d, "user", "\ud800"), 422, "names \ufffd, who is not"),
        (lambda d: _add_audit_event(d, "checklist_template", "\ud800"), 200, ""),
        (lambda d: _add_audit_event(d, "checklist_template", "a\x00"), 200, ""),
    ],
)
def test_characters_no_database_can_store_where_a_backup_names_things_are_answered_cleanly(
    client: TestClient,
    db: Database,
    member: Actor,
    admin: Actor,
    change: Callable[[dict[str, Any]], None],
    status: int,
    words: str,
) -> None:
    populated(client, db, member, admin)
    document = json.loads(_export(db).model_dump_json())
    change(document)
    # As a file carries it: a lone surrogate only as an escape, which UTF-8 cannot encode.
    body = json.dumps(document, ensure_ascii=True).encode()

    response = client.post("/api/v1/import", content=body, headers=admin.headers)

    assert response.status_code == status, response.text
    if status != 200:
        assert words in response.json()["detail"]
