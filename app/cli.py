"""The designgate command: serve, users, tokens, backups and the gate for scripts and CI."""

import getpass
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from app import heap, live, sqlite_server_lock
from app.config import Settings, get_settings, sqlite_path
from app.db import Database
from app.errors import DesignGateError
from app.models.enums import Role
from app.schemas.common import MAX_ID

cli = typer.Typer(help="designgate: design review before code.", no_args_is_help=True)
user_cli = typer.Typer(help="Manage users.", no_args_is_help=True)
token_cli = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
db_cli = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
cli.add_typer(user_cli, name="user")
cli.add_typer(token_cli, name="token")
cli.add_typer(db_cli, name="db")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _database() -> Database:
    """The database, for a command that works on one that exists: only serve, db upgrade and
    import create it. SQLite would make an empty file for a path that is not there, and the
    command then failed on a missing table, leaving the file behind."""
    settings = get_settings()
    path = sqlite_path(settings.sqlalchemy_url)
    if path is not None and not path.exists():
        _fail(
            f"DESIGNGATE_DATABASE_URL {settings.database_url}: there is no database at "
            f"{path.absolute()}; designgate db upgrade (or serve) creates it",
            code=2,  # as for any database that cannot be used
        )
    database = Database(settings)
    if not database.is_sqlite:
        # What a command announces (a token revoked, a user deactivated) reaches every running
        # server's open streams through NOTIFY at its commit, as a server's own changes do. On
        # SQLite nothing reaches another process: those streams re-check within RECHECK_S.
        live.connect(database.writer, live.make_hub(database.engine))
    return database


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = 8000,
) -> None:
    """Apply migrations, then serve the web app and the API."""
    import uvicorn

    from app.http_protocol import with_deadlines
    from app.main import create_app

    settings = get_settings()
    _sole_server_of_a_sqlite_file(settings)
    try:  # a malformed template file is named with its field, not shown as a traceback
        app = create_app(settings)
    except DesignGateError as exc:
        _fail(exc.detail, code=2)  # configuration the app cannot use, as a bad setting is
    _ensure_current_schema(settings.database_url)
    _settle_for_serving()
    # The app object, not an import string: it is built once, in this process. No websocket
    # routes exist, so uvicorn need not load a websocket implementation. Live pages hold
    # server-sent event streams open; without a limit a stop would wait forever. Proxy headers
    # are the app's to believe (DESIGNGATE_FORWARDED_ALLOW_IPS), not uvicorn's, which by
    # default would believe them from any process on this machine. uvicorn's own protocol
    # would wait for ever for a request's headers or the rest of its body.
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=with_deadlines(
            settings.request_header_timeout_s, settings.request_body_idle_timeout_s
        ),
        proxy_headers=False,
        ws="none",
        timeout_graceful_shutdown=5,
    )


def _sole_server_of_a_sqlite_file(settings: Settings) -> None:
    """Before the schema is touched or start-up marks unfinished work: see
    app/sqlite_server_lock.py."""
    database = sqlite_path(settings.sqlalchemy_url)
    if database is None:
        return
    try:
        sqlite_server_lock.hold(database)
    except sqlite_server_lock.AlreadyServed as exc:
        _fail(
            f"DESIGNGATE_DATABASE_URL {settings.database_url}: another designgate serve (process"
            f" {exc.holder or 'unknown'}) is serving this SQLite database, and one process"
            " serves a SQLite file; stop it first, or use PostgreSQL for several processes",
            code=2,
        )


def _settle_for_serving() -> None:
    """Interpreter settings for a server process (not for tests, which build many apps)."""
    # What start-up built (modules, the app, its routes and templates) lives as long as the
    # process: frozen, full collections never walk it again; each such walk stalled the event
    # loop, and every page and live event with it.
    heap.keep_for_life()
    # A thread back from SQLite waits for the GIL up to the switch interval for every
    # statement while the event loop computes; at 5 ms, a write transaction of a dozen
    # statements held SQLite's one write lock for tens of milliseconds, and writers queued.
    sys.setswitchinterval(0.001)


def _ensure_current_schema(database_url: str) -> None:
    from app import migrate

    try:
        migrate.ensure_current(database_url)
    except migrate.MigrationError as exc:
        _fail(str(exc))


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from alembic.util import CommandError

    from app import migrate

    try:
        migrate.upgrade(get_settings().database_url, revision)
    except CommandError as exc:  # e.g. a revision these migration files do not know
        _fail(str(exc))


def _read_password(password_stdin: bool) -> str:
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            _fail("the passwords differ")
    return password


@user_cli.command("create")
def user_create(
    email: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    role: Annotated[Role, typer.Option(help="admin, member or viewer.")] = Role.MEMBER,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user; the password is read from standard input (or prompted for)."""
    from app.services import users

    database = _database()  # refused before the password is asked for
    password = _read_password(password_stdin)
    try:
        with database.transaction() as session:
            user = users.create_user(session, email=email, name=name, role=role, password=password)
            typer.echo(f"created {user.role} {user.email} (id {user.id})")
    except DesignGateError as exc:
        _fail(exc.detail)


def _set_active(email: str, *, active: bool) -> None:
    from app.services import users

    try:
        with _database().transaction() as session:
            user = users.get_by_email(session, email)
            users.set_active(session, user_id=user.id, active=active, actor=None)
    except DesignGateError as exc:
        _fail(exc.detail)
    typer.echo(f"{user.email} is {'active' if active else 'deactivated'}")


@user_cli.command("deactivate")
def user_deactivate(email: str) -> None:
    """Deactivate a user: their sessions, API tokens and open live streams stop at once."""
    _set_active(email, active=False)


@user_cli.command("reactivate")
def user_reactivate(email: str) -> None:
    """Reactivate a user: their API tokens work again, and they can sign in."""
    _set_active(email, active=True)


@token_cli.command("create")
def token_create(
    email: str,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create an API token for EMAIL; it is printed once, alone on the last line."""
    from app.services import users

    try:
        with _database().transaction() as session:
            user = users.get_by_email(session, email)
            token, plain = users.create_token(session, user=user, label=label)
    except DesignGateError as exc:
        _fail(exc.detail)
    typer.echo(f"Token id {token.id}. Store the token now; it cannot be shown again.", err=True)
    typer.echo(plain)


@token_cli.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The token's id.")],
) -> None:
    """Revoke the API token with id TOKEN_ID; requests with it are refused from now on."""
    from app.services import users

    try:
        with _database().transaction() as session:
            token = users.revoke_token(session, token_id=token_id, actor=None)
            typer.echo(f"revoked token {token.id} ({token.label or 'no label'})")
    except DesignGateError as exc:
        _fail(exc.detail)


@cli.command("gate")
def gate_command(
    project_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The project's id.")],
) -> None:
    """Exit 0 when the project's gate is open; otherwise list what keeps it closed and exit 1."""
    from app.services import gate, projects

    try:
        with _database().transaction(write=False) as session:
            state = gate.gate(session, projects.get_project(session, project_id))
    except DesignGateError as exc:
        _fail(exc.detail, code=2)
    if state.open:
        typer.echo(f"open: all {state.total} items have a current decision")
        return
    typer.echo(f"closed: {state.reason()}")
    for item in state.missing:
        typer.echo(f"missing  {item.item_id}  {item.category}  {item.title}")
    for item in state.stale:
        typer.echo(f"stale    {item.item_id}  {item.category}  {item.title}")
    raise typer.Exit(1)


@cli.command("export")
def export_command(
    project_id: Annotated[
        int | None, typer.Argument(min=1, max=MAX_ID, help="The project to back up.")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Back up every project, user, template and draft.")
    ] = False,
) -> None:
    """Write a backup of one project (or --all) as JSON to standard output."""
    from app.services import backup

    if (project_id is None) == (not everything):
        _fail("give either a PROJECT_ID or --all")
    try:
        with _database().transaction(write=False) as session:
            document = backup.export_backup(session, project_id=project_id)
    except DesignGateError as exc:
        _fail(exc.detail)
    sys.stdout.write(document.model_dump_json(indent=2) + "\n")


@cli.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="A backup file, or - for standard input.")],
) -> None:
    """Restore a backup as new rows, in one transaction: a bad file writes nothing."""
    from app.services import backup, templates

    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    settings = get_settings()
    _ensure_current_schema(settings.database_url)
    try:
        catalog = templates.load_catalog(settings.templates_dir)
        with _database().transaction() as session:
            summary = backup.import_backup(session, raw=raw, actor=None, catalog=catalog)
    except DesignGateError as exc:
        _fail(f"nothing was imported: {exc.detail}")
    for ref, new_id in summary.projects.items():
        typer.echo(f"project {ref} in the file is now project {new_id}")
    typer.echo(
        f"users: {len(summary.users_created)} created, {len(summary.users_matched)} matched; "
        f"templates: {len(summary.templates_created)} created; drafts: {summary.drafts}"
    )


def main() -> None:
    """The console script: what is wrong with the configuration or the database is said in
    a line naming the variable, not shown as a traceback."""
    try:
        cli()
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        for problem in _settings_problems(exc):
            typer.echo(f"error: {problem}", err=True)
        sys.exit(2)
    except (ArgumentError, OperationalError) as exc:
        typer.echo(f"error: {_database_problem(exc, get_settings().database_url)}", err=True)
        sys.exit(2)


def _settings_problems(exc: ValidationError) -> list[str]:
    """One line per bad variable; the value itself is not repeated, since it may be a key."""
    problems = []
    for error in exc.errors():
        variable = f"DESIGNGATE_{str(error['loc'][0]).upper() if error['loc'] else 'SETTINGS'}"
        # A check of our own says what is wrong in its words, after pydantic's "Value error, ".
        own = error.get("ctx", {}).get("error") if error["type"] == "value_error" else None
        reason = str(own).removeprefix(f"{variable} ") if own else error["msg"]
        problems.append(f"{variable}: {reason}")
    return problems


def _database_problem(exc: ArgumentError | OperationalError, database_url: str) -> str:
    """The database error's own first line, and the URL it was about without its password."""
    try:
        shown = make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = "(not a database URL)"
    reason = str(exc.orig if isinstance(exc, OperationalError) else exc).strip().splitlines()
    return f"DESIGNGATE_DATABASE_URL {shown}: {reason[0] if reason else type(exc).__name__}"
