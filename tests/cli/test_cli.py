"""The real `designgate` console script, run as a subprocess against the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app import migrate
from app.config import normalise_database_url
from tests import factories
from tests.conftest import Actor

DESIGNGATE = Path(sys.executable).parent / "designgate"
PASSWORD = "a long enough password"
CLI_TIMEOUT_S = 60


def run(
    database_url: str,
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    done = run_bytes(database_url, *args, stdin=stdin.encode(), env=env, cwd=cwd)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def run_bytes(
    database_url: str,
    *args: str | bytes,
    stdin: bytes,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """As ``run``, with arguments and input that need not be UTF-8."""
    return subprocess.run(
        [str(DESIGNGATE), *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, "DESIGNGATE_DATABASE_URL": database_url, **(env or {})},
        cwd=cwd,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def create_user(database_url: str, email: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(database_url, "user", "create", email, *extra, stdin=PASSWORD + "\n")


def _sql(database_url: str, statement: str) -> Any:
    """Run one statement on the test database, committed; its first column, if any."""
    engine = create_engine(normalise_database_url(database_url))
    with engine.begin() as connection:
        result = connection.execute(text(statement))
        value = result.scalar() if result.returns_rows else None
    engine.dispose()
    return value


def test_the_console_script_is_installed() -> None:
    assert DESIGNGATE.exists()


@pytest.mark.parametrize("password_flag", [[], ["--password-stdin"]])
def test_user_create_reads_the_password_from_stdin(
    database_url: str, client: TestClient, password_flag: list[str]
) -> None:
    done = create_user(
        database_url, "Ann@Example.com", "--name", "Ann", "--role", "admin", *password_flag
    )
    assert done.returncode == 0, done.stderr
    assert "ann@example.com" in done.stdout
    token = run(database_url, "token", "create", "ann@example.com").stdout.splitlines()[-1]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["email"], me["name"], me["role"]) == ("ann@example.com", "Ann", "admin")


def test_the_stored_password_is_an_argon2id_hash(database_url: str) -> None:
    assert create_user(database_url, "hash@example.com").returncode == 0
    engine = create_engine(normalise_database_url(database_url))
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT password_hash FROM users WHERE email = 'hash@example.com'")
        ).scalar_one()
    engine.dispose()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_duplicate_email_fails_with_a_message(database_url: str) -> None:
    assert create_user(database_url, "bob@example.com").returncode == 0
    again = create_user(database_url, "BOB@example.com")
    assert again.returncode != 0
    assert "already exists" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-email"], "email"),
        (["short@example.com", "--role", "owner"], "owner"),
    ],
)
def test_user_create_refuses_bad_input(database_url: str, args: list[str], message: str) -> None:
    done = run(database_url, "user", "create", *args, stdin=PASSWORD + "\n")
    assert done.returncode != 0
    assert message in done.stderr


def test_a_short_password_is_refused(database_url: str) -> None:
    done = run(
        database_url, "user", "create", "pw@example.com", "--password-stdin", stdin="short\n"
    )
    assert done.returncode != 0
    assert "password" in done.stderr


def test_a_password_of_spaces_alone_is_refused(database_url: str) -> None:
    done = run(
        database_url, "user", "create", "blank@example.com", "--password-stdin", stdin=" " * 12
    )
    assert done.returncode != 0
    assert "The password cannot be blank" in done.stderr
    assert _sql(database_url, "SELECT count(*) FROM users WHERE email = 'blank@example.com'") == 0


def test_token_create_prints_the_token_alone_on_the_last_line_and_it_works(
    database_url: str, client: TestClient
) -> None:
    assert create_user(database_url, "cy@example.com", "--role", "member").returncode == 0
    done = run(database_url, "token", "create", "cy@example.com", "--label", "laptop")
    assert done.returncode == 0, done.stderr
    token = done.stdout.splitlines()[-1]
    assert token == token.strip()
    assert token.startswith("dg_")
    assert " " not in token
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/v1/projects", json={"name": "n", "problem": "p"}, headers=headers)
    assert created.status_code == 201, created.text
    assert client.get("/api/v1/me", headers=headers).json()["email"] == "cy@example.com"
    # Shown once: the database holds only its hash.
    engine = create_engine(normalise_database_url(database_url))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT token_sha256 FROM api_tokens")).scalars().all()
    engine.dispose()
    assert token not in stored


def test_token_create_for_a_deactivated_user_fails_and_makes_no_token(database_url: str) -> None:
    """A token was printed, and every use of it was 401 "unknown or revoked"."""
    assert create_user(database_url, "eve@example.com").returncode == 0
    _sql(database_url, "UPDATE users SET is_active = false WHERE email = 'eve@example.com'")

    done = run(database_url, "token", "create", "eve@example.com")

    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: eve@example.com is deactivated"), done.stderr
    assert done.stdout == ""
    assert _sql(database_url, "SELECT count(*) FROM api_tokens") == 0


def test_user_deactivate_refuses_their_token_at_once_and_reactivate_restores_it(
    database_url: str, client: TestClient, member: Actor
) -> None:
    done = run(database_url, "user", "deactivate", member.email)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{member.email} is deactivated\n"
    assert client.get("/api/v1/me", headers=member.headers).status_code == 401
    again = run(database_url, "user", "reactivate", member.email)
    assert again.returncode == 0, again.stderr
    assert client.get("/api/v1/me", headers=member.headers).status_code == 200


def test_user_deactivate_refuses_the_last_active_admin(database_url: str, admin: Actor) -> None:
    done = run(database_url, "user", "deactivate", admin.email)

    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"error: {admin.email} is the last active admin; make someone else an admin first\n"
    )
    assert _sql(database_url, "SELECT count(*) FROM users WHERE is_active") == 1


def test_token_create_for_an_unknown_email_fails(database_url: str) -> None:
    done = run(database_url, "token", "create", "nobody@example.com")
    assert done.returncode != 0
    assert "nobody@example.com" in done.stderr
    assert done.stdout == ""


def test_gate_exits_1_listing_what_is_missing_then_0_when_open(
    database_url: str, client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    items = factories.checklist(client, member, project["id"])
    for item in items[:-2]:
        factories.decide(client, member, item)
    closed = run(database_url, "gate", str(project["id"]))
    assert closed.returncode == 1
    assert closed.stdout.startswith("closed:")
    for item in items[-2:]:
        assert f"missing  {item['id']}  {item['category']}  {item['title']}" in closed.stdout
    for item in items[:-2]:
        assert item["title"] not in closed.stdout
    for item in items[-2:]:
        factories.decide(client, member, item)
    opened = run(database_url, "gate", str(project["id"]))
    assert opened.returncode == 0, opened.stdout
    assert opened.stdout.startswith("open:")


def test_gate_lists_stale_items_after_a_design_edit(
    database_url: str, client: TestClient, member: Actor
) -> None:
    project = factories.create_project(client, member)
    factories.decide_all(client, member, project["id"])
    client.patch(
        f"/api/v1/projects/{project['id']}",
        json={"version": project["version"], "architecture": "Kafka instead"},
        headers=member.headers,
    )
    closed = run(database_url, "gate", str(project["id"]))
    assert closed.returncode == 1
    assert closed.stdout.count("stale    ") == len(
        factories.checklist(client, member, project["id"])
    )


def test_gate_of_an_unknown_project_exits_2(database_url: str) -> None:
    done = run(database_url, "gate", "987654")
    assert done.returncode == 2
    assert "987654" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["gate", "1"],
        ["export", "1"],
        ["export", "--all"],
        ["token", "create", "ann@example.com"],
        ["token", "revoke", "1"],
        ["user", "create", "ann@example.com", "--password-stdin"],
    ],
    ids=lambda args: "-".join(args[:2]),
)
def test_a_command_on_a_sqlite_file_that_is_not_there_creates_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    """An empty nope.db was made, and the command failed on a missing table."""
    done = run("sqlite:///nope.db", *args, stdin=PASSWORD + "\n", cwd=tmp_path)

    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: DESIGNGATE_DATABASE_URL sqlite:///nope.db: there is no database at "
        f"{tmp_path / 'nope.db'}; designgate db upgrade (or serve) creates it\n"
    )
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_db_upgrade_still_creates_a_sqlite_file_that_is_not_there(tmp_path: Path) -> None:
    done = run("sqlite:///new.db", "db", "upgrade", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    opened = run("sqlite:///new.db", "gate", "1", cwd=tmp_path)
    assert opened.returncode == 2, opened.stderr
    assert "Project 1 does not exist" in opened.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_for_health(url: str, server: subprocess.Popen[Any]) -> httpx.Response:
    """Poll until the server answers, it exits, or 300 attempts (about 30 s) pass."""
    for _attempt in range(300):
        assert server.poll() is None, "designgate serve exited early"
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("designgate serve never answered /healthz")


def test_serve_upgrades_a_fresh_database_to_head_and_answers_healthz(
    scratch_database_url: str,
) -> None:
    port = _free_port()
    env = {**os.environ, "DESIGNGATE_DATABASE_URL": scratch_database_url}
    server = subprocess.Popen(
        [str(DESIGNGATE), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = _wait_for_health(f"http://127.0.0.1:{port}/healthz", server)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        unauthenticated = httpx.get(f"http://127.0.0.1:{port}/api/v1/projects", timeout=5.0)
        assert unauthenticated.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
    engine = create_engine(normalise_database_url(scratch_database_url))
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()

    assert (
        version
        == ScriptDirectory.from_config(
            migrate.alembic_config(scratch_database_url)
        ).get_current_head()
    )


NOT_UTF8 = b"\xff"


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        ([b"ann" + NOT_UTF8 + b"@example.com"], PASSWORD.encode(), "email address contains"),
        (["ann@example.com", "--name", b"Ann" + NOT_UTF8], PASSWORD.encode(), "name contains"),
        (["ann@example.com"], PASSWORD.encode() + NOT_UTF8, "password contains"),
        (["ann@example.com", "--name", "n" * 201], PASSWORD.encode(), "at most 200"),
    ],
    ids=["email", "name", "password", "long name"],
)
def test_user_create_refuses_text_no_database_can_store_with_a_message(
    database_url: str, args: list[str | bytes], stdin: bytes, words: str
) -> None:
    # Python reads bytes that are not UTF-8 in arguments and standard input as lone
    # surrogates: hashing or storing one was a traceback.
    done = run_bytes(database_url, "user", "create", *args, "--password-stdin", stdin=stdin)
    stderr = done.stderr.decode("utf-8", "replace")

    assert done.returncode == 1, stderr
    assert stderr.startswith("error: "), stderr
    assert words in stderr
    assert "Traceback" not in stderr
    assert run(database_url, "token", "create", "ann@example.com").returncode == 1


def test_token_create_refuses_a_label_that_is_not_utf8(database_url: str) -> None:
    assert create_user(database_url, "dee@example.com").returncode == 0
    label = b"laptop" + NOT_UTF8
    args = ("token", "create", "dee@example.com", "--label", label)
    done = run_bytes(database_url, *args, stdin=b"")
    stderr = done.stderr.decode("utf-8", "replace")

    assert done.returncode == 1, stderr
    assert "label contains" in stderr
    assert done.stdout == b""


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("DESIGNGATE_MAX_BODY_BYTES", "a lot", "DESIGNGATE_MAX_BODY_BYTES: Input should be"),
        ("DESIGNGATE_LLM_TIMEOUT_S", "-1", "DESIGNGATE_LLM_TIMEOUT_S: Input should be greater"),
        ("DESIGNGATE_LLM_TIMEOUT_S", "inf", "DESIGNGATE_LLM_TIMEOUT_S: Input should be a finite"),
        ("DESIGNGATE_SECRET_KEY", "short-secret", "DESIGNGATE_SECRET_KEY: must be at least 32"),
        # A traceback (no module named MySQLdb), exit 1.
        ("DESIGNGATE_DATABASE_URL", "mysql://x", "DESIGNGATE_DATABASE_URL: must be sqlite"),
        # The right words, but exit 1.
        ("DESIGNGATE_TEMPLATES_DIR", "/no/such/folder", "DESIGNGATE_TEMPLATES_DIR: is not a"),
        # Accepted without a word: the proxy was then never believed.
        ("DESIGNGATE_FORWARDED_ALLOW_IPS", "notanip", "DESIGNGATE_FORWARDED_ALLOW_IPS: entry 1"),
        (
            "DESIGNGATE_FORWARDED_ALLOW_IPS",
            "10.0.0.5, 10.0.0.1/8",
            "DESIGNGATE_FORWARDED_ALLOW_IPS: entry 2",
        ),
    ],
    ids=[
        "not-a-number",
        "negative-timeout",
        "endless-timeout",
        "short-secret",
        "unsupported-database",
        "missing-templates-folder",
        "proxy-not-an-address",
        "proxy-network-with-host-bits",
    ],
)
def test_a_bad_setting_stops_serve_with_the_variable_named(
    database_url: str, variable: str, value: str, words: str
) -> None:
    done = run(database_url, "serve", "--port", str(_free_port()), env={variable: value})

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {words}"), done.stderr
    assert "Traceback" not in done.stderr
    assert value not in done.stderr  # a value may be a key: it is not repeated


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", "(not a database URL): Could not parse"),
        # serve says SQLite's words (unable to open), the other commands that nothing is there.
        ("sqlite:////no/such/folder/x.db", "sqlite:////no/such/folder/x.db: "),
        ("postgresql://someone:hunter2@127.0.0.1:1/x", "postgresql://someone:***@127.0.0.1:1/x:"),
    ],
    ids=["malformed", "sqlite-folder-missing", "postgresql-refused"],
)
@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["gate", "1"]])
def test_a_database_that_cannot_be_used_is_named_without_its_password(
    url: str, words: str, command: list[str]
) -> None:
    done = run(url, *command)

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: DESIGNGATE_DATABASE_URL {words}"), done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [["gate", str(2**31)], ["export", str(2**31)], ["gate", "--", "0"]],
    ids=["gate-past-integer", "export-past-integer", "gate-zero"],
)
def test_a_project_id_no_project_can_have_is_a_usage_error(
    database_url: str, args: list[str]
) -> None:
    """Past INTEGER the lookup reached PostgreSQL: a traceback (integer out of range)."""
    done = run(database_url, *args)

    assert done.returncode == 2, done.stderr
    assert "Invalid value for 'project_id'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("port", ["65536", "73654", "-1"])
def test_a_port_no_socket_can_have_is_a_usage_error(database_url: str, port: str) -> None:
    """73654 was served, and logged as such, on 73654 - 65536 = 8118."""
    done = run(database_url, "serve", "--port", port)

    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--port'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_malformed_template_file_stops_serve_as_a_bad_setting_does(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "broken.yml").write_text("key: x\nname: [unclosed")

    done = run(
        database_url,
        "serve",
        "--port",
        str(_free_port()),
        env={"DESIGNGATE_TEMPLATES_DIR": str(tmp_path)},
    )

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    assert "broken.yml" in done.stderr
    assert "Traceback" not in done.stderr
