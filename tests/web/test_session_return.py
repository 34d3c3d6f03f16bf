"""A form sent after its session ended is not lost, and signing in again leads back to its page."""

from typing import Any

from fastapi.testclient import TestClient

from app.db import Database
from app.models import User
from app.services import users
from tests import factories
from tests.conftest import Actor
from tests.web.test_pages import HTMX, sign_in


def _end_sessions(db: Database, user_id: int) -> None:
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        users.end_sessions(session, user=user)


def _form_of_an_ended_session(
    client: TestClient, member: Actor, db: Database
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A project, its first item, and a decision form filled in while signed in, once the
    session it was filled in has ended."""
    project = factories.create_project(client, member)
    item = factories.checklist(client, member, project["id"])[0]
    token = sign_in(client, member.email)
    _end_sessions(db, member.user_id)
    form = {"status": "decided", "summary": "S", "rationale": "R", "csrf_token": token}
    return project, item, form


def test_a_form_sent_after_the_session_ended_is_answered_on_its_page(
    client: TestClient, member: Actor, db: Database
) -> None:
    project, item, form = _form_of_an_ended_session(client, member, db)
    page = f"http://testserver/projects/{project['id']}"

    kept = client.post(
        f"/items/{item['id']}/decision", data=form, headers={**HTMX, "HX-Current-URL": page}
    )
    assert kept.status_code == 401
    assert "HX-Redirect" not in kept.headers
    assert kept.headers["HX-Retarget"] == "#flash"
    assert f'href="/login?next=/projects/{project["id"]}" target="_blank"' in kept.text


def test_a_plain_form_sent_after_the_session_ended_signs_in_back_to_its_own_site_page(
    client: TestClient, member: Actor, db: Database
) -> None:
    project, item, form = _form_of_an_ended_session(client, member, db)

    def sign_in_next(referer: str) -> str:
        sent = client.post(
            f"/items/{item['id']}/decision",
            data=form,
            headers={"Referer": referer},
            follow_redirects=False,
        )
        assert sent.status_code == 303
        location: str = sent.headers["location"]
        return location

    here = f"http://testserver/projects/{project['id']}"
    assert sign_in_next(here) == f"/login?next=/projects/{project['id']}"
    assert sign_in_next(f"https://elsewhere.example/projects/{project['id']}") == "/login?next=/"
    assert sign_in_next("http://testserver//elsewhere.example/") == "/login?next=/"
