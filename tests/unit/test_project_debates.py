"""The review page's list of a project's threads, read as plain columns."""

from app.db import Database
from app.models import ChecklistItem, Message, Project, Thread
from app.models.enums import MessageRole, MessageStatus
from app.services.debate_overview import project_debates


def test_each_thread_lists_its_own_models_item_and_reply_counts(db: Database) -> None:
    models = [["openai/a", "anthropic/b"], ["openai/a"], ["openai/a", "anthropic/b"], []]
    with db.transaction() as session:
        project = Project(name="p", problem="p")
        session.add(project)
        session.flush()
        item = ChecklistItem(
            project_id=project.id, category="load", title="Spikes", question="?", position=0
        )
        session.add(item)
        session.flush()
        for number, names in enumerate(models):
            thread = Thread(
                project_id=project.id,
                mode="challenge" if number == 1 else "open",
                models=names,
                title=f"t{number}",
                checklist_item_id=item.id if number == 1 else None,
            )
            session.add(thread)
            session.flush()
            for status in [MessageStatus.COMPLETE, MessageStatus.ERROR][: number % 3]:
                session.add(
                    Message(thread_id=thread.id, turn=1, role=MessageRole.ASSISTANT, status=status)
                )
    with db.transaction() as session:
        rows = project_debates(session, project_id=project.id).threads
    assert [list(row.thread.models) for row in rows] == models
    assert [row.thread.title for row in rows] == ["t0", "t1", "t2", "t3"]
    assert [row.item_title for row in rows] == [None, "Spikes", None, None]
    assert [(row.replies, row.errors) for row in rows] == [(0, 0), (1, 0), (2, 1), (0, 0)]
