"""A real server (uvicorn on a free 127.0.0.1 port) and Debian's Chromium for browser tests."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.models import User
from app.models.enums import Role
from app.schemas.project import ProjectCreate
from app.services import projects, users
from tests.web.chromium import Chromium, close_context

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery"
NewContext = Callable[..., BrowserContext]
# How long a stopping test server may take: 1 s for open connections, up to 10 s for the
# model's work to store its text (app/main.py), and a margin.
STOP_S = 15


class LiveServer:
    """The app served by uvicorn in a thread, as a browser reaches it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = _free_port()
        self._prepare()

    def _prepare(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
            ws="none",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Database:
        database: Database = self.app.state.db
        return database

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STOP_S)
        if self.thread.is_alive():
            # Still serving, it may hold a transaction that the next clean-up would wait on.
            raise RuntimeError(f"the test server did not stop within {STOP_S} s")

    def restart(self) -> None:
        """Serve again on the same port, as after a server restart."""
        self._prepare()
        self.start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live_server(model_settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(create_app(model_settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Chromium]:
    launched = Chromium(playwright)
    yield launched
    launched.close()


@pytest.fixture
def browser(chromium: Chromium) -> Browser:
    """The run's browser; a new one if the last had to be ended (tests/web/chromium.py)."""
    return chromium.browser()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[NewContext]:
    """Make as many isolated browser contexts (separate cookie jars) as a test needs."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        close_context(context)


def create_user(server: LiveServer, role: Role, name: str) -> str:
    email = f"{name.lower()}@example.test"
    with server.db.transaction() as session:
        users.create_user(session, email=email, name=name, role=role, password=PASSWORD)
    return email


def create_project(server: LiveServer, owner_email: str, name: str = "Payments ledger") -> int:
    """A project owned by the user with this email, made directly through the service."""
    with server.db.transaction() as session:
        owner = session.scalar(select(User).where(User.email == owner_email))
        assert owner is not None
        data = ProjectCreate(name=name, problem="Money moves between accounts exactly once.")
        return projects.create_project(session, data=data, actor=owner).id


def sign_in(page: Page, server: LiveServer, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def open_review(page: Page, server: LiveServer, email: str, project_id: int) -> None:
    """Sign in as ``email`` and open the project's review page."""
    sign_in(page, server, email)
    page.goto(f"{server.url}/projects/{project_id}")


def csrf_token(page: Page) -> str:
    """The token htmx sends, as a script on the page could read it."""
    token: str = page.evaluate(
        "JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']"
    )
    return token


def open_item(item: Locator) -> Locator:
    """Open a checklist item on the review page; returns its panel once htmx has filled it
    (the decision, the revisions and, for writers, the decision form are fetched then)."""
    item.locator("details > summary").click()
    panel = item.locator("[id$='-panel']")
    expect(panel.locator("[id$='-record']")).to_be_attached()
    return panel


def overflow(page: Page) -> int:
    """How many pixels the page is wider than its window (0 when it fits)."""
    excess: int = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return excess


def screenshot(page: Page, name: str, selector: str | None = None) -> Path:
    """What a person sees: the top of the page, or one element of it."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if selector:
        page.locator(selector).screenshot(path=str(path))
    else:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path))
    return path
