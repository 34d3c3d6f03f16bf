"""Every page fits a phone's width (390 px) with content at its widest: a model's reply with
a long code line, a wide table, an unbroken link and inline code, a model name of 87
characters, a generation with a 300-character line. Nothing may need sideways scrolling of
the page itself (a code block scrolls or wraps inside its own box)."""

from sqlalchemy import select

from app.models import ChecklistItem, Generation, Message, Thread, User
from app.models.enums import GenerationStatus, MessageStatus, Role
from app.services import meetings
from tests.web.conftest import (
    LiveServer,
    NewContext,
    create_project,
    create_user,
    overflow,
    sign_in,
)

PHONE = {"width": 390, "height": 844}
MODEL = "openai/" + "m" * 80
WIDE_MARKDOWN = f"""Here is a design.

```python
def handler(message):  # {"x" * 180}
    return message
```

| one | two | three | four | five | six |
| --- | --- | --- | --- | --- | --- |
| {"w" * 60} | b | c | d | e | f |

Link: https://example.test/{"a" * 200}

`inline_code_{"y" * 120}`
"""


def _wide_content(server: LiveServer, email: str, project_id: int) -> dict[str, int]:
    """A thread, a generation and a running meeting, each with its widest content."""
    with server.db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        item = session.scalar(select(ChecklistItem).where(ChecklistItem.project_id == project_id))
        assert user is not None
        assert item is not None
        thread = Thread(
            project_id=project_id,
            checklist_item_id=item.id,
            mode="open",
            models=[MODEL],
            title="T" * 190,
            created_by_id=user.id,
        )
        session.add(thread)
        session.flush()
        common = {"thread_id": thread.id, "turn": 1, "status": MessageStatus.COMPLETE}
        session.add(Message(role="user", content=WIDE_MARKDOWN, author_id=user.id, **common))
        reply = {
            "requested_model": MODEL,
            "model": MODEL,
            "prompt": [{"role": "user", "content": WIDE_MARKDOWN}],
        }
        session.add(Message(role="assistant", content=WIDE_MARKDOWN, **reply, **common))
        generation = Generation(
            project_id=project_id,
            status=GenerationStatus.COMPLETE,
            model=MODEL,
            content="x = '" + "z" * 300 + "'\n",
            based_on=[],
            created_by_id=user.id,
        )
        session.add(generation)
        session.flush()
        meeting = meetings.start_meeting(session, project_id=project_id, actor=user)
        return {
            "thread": thread.id,
            "generation": generation.id,
            "item": item.id,
            "meeting": meeting.id,
        }


def test_every_page_fits_a_phone_with_its_widest_content(
    live_server: LiveServer, new_context: NewContext
) -> None:
    email = create_user(live_server, Role.ADMIN, "Ada")
    project_id = create_project(live_server, email)
    ids = _wide_content(live_server, email, project_id)
    page = new_context(viewport=PHONE).new_page()
    sign_in(page, live_server, email)
    paths = [
        "/",
        "/projects/new",
        f"/projects/{project_id}",
        f"/projects/{project_id}/gate",
        f"/projects/{project_id}/meeting",
        f"/projects/{project_id}/threads/new",
        f"/threads/{ids['thread']}",
        f"/generations/{ids['generation']}",
        f"/items/{ids['item']}",
        "/admin/users",
        "/admin/tokens",
    ]
    too_wide = {}
    for path in paths:
        response = page.goto(live_server.url + path)
        assert response is not None, path
        assert response.status == 200, path
        page.wait_for_load_state("load")
        if excess := overflow(page):
            too_wide[path] = excess
    assert too_wide == {}
