"""Projects: the design under review, with optimistic concurrency."""

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import live
from app.db import utcnow
from app.errors import Conflict, NotFound
from app.models import ChecklistItem, Project, User
from app.schemas.checklist import ChecklistItemCreate
from app.schemas.project import ProjectCreate, ProjectUpdate
from app.schemas.template import TemplateRead
from app.services import audit, templates
from app.services.paging import Page, page_of
from app.services.templates import TemplateCatalog

# Changing any of these changes what was decided on, so decisions go stale.
DESIGN_FIELDS = frozenset({"problem", "architecture", "data_model"})
EDITABLE_FIELDS = (
    "name",
    "problem",
    "architecture",
    "data_model",
    "constraints",
    "blind_first",
    "token_budget",
)
# Fields an explicit null clears (for the others, null means "leave as it is").
CLEARABLE_FIELDS = frozenset({"token_budget"})


def snapshot(project: Project) -> dict[str, Any]:
    fields = {name: getattr(project, name) for name in EDITABLE_FIELDS}
    return {**fields, "version": project.version, "design_version": project.design_version}


def get_project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} does not exist")
    return project


def project_page(session: Session, *, after: int, limit: int) -> Page[Project]:
    """Up to ``limit`` projects with an id above ``after``, by id, and whether more follow."""
    stmt = select(Project).where(Project.id > after).order_by(Project.id).limit(limit + 1)
    return page_of(session.scalars(stmt).all(), limit=limit)


def create_project(
    session: Session,
    *,
    data: ProjectCreate,
    actor: User,
    catalog: TemplateCatalog | None = None,
    extra_items: Sequence[ChecklistItemCreate] = (),
) -> Project:
    """A project whose checklist is its template's items, then ``extra_items`` (custom)."""
    template = templates.require_template(
        session, catalog=catalog or templates.builtin_catalog(), key=data.template
    )
    project = Project(**data.model_dump(), created_by_id=actor.id)
    session.add(project)
    session.flush()
    _add_checklist(session, project, template, extra_items)
    audit.record(
        session,
        actor=actor,
        action="project.created",
        entity_type="project",
        entity_id=project.id,
        project_id=project.id,
        after=snapshot(project),
    )
    session.flush()
    return project


def _add_checklist(
    session: Session,
    project: Project,
    template: TemplateRead,
    extra_items: Sequence[ChecklistItemCreate],
) -> None:
    for position, spec in enumerate(template.items):
        session.add(
            ChecklistItem(
                project_id=project.id,
                category=spec.category,
                title=spec.title,
                question=spec.question,
                verification=spec.verification,
                position=position,
            )
        )
    for position, extra in enumerate(extra_items, start=len(template.items)):
        session.add(
            ChecklistItem(
                project_id=project.id,
                category=extra.category,
                title=extra.title,
                question=extra.question,
                position=position,
                custom=True,
            )
        )


def update_project(
    session: Session, *, project_id: int, data: ProjectUpdate, actor: User
) -> Project:
    project = get_project(session, project_id)
    if data.version != project.version:
        raise Conflict(
            f"Project {project_id} is at version {project.version}; "
            f"your edit was based on version {data.version}",
            current=snapshot(project),
        )
    return _apply(session, project, _changed_fields(project, data), actor)


def text_digest(text: str) -> str:
    """What a text field held when an edit began; a browser sends its line breaks as CRLF."""
    return hashlib.sha256(_lines_as_stored(text).encode()).hexdigest()


def _lines_as_stored(text: str) -> str:
    return text.replace("\r\n", "\n")


def merge_edit(
    session: Session,
    *,
    project_id: int,
    data: ProjectUpdate,
    base: Mapping[str, str],
    actor: User,
) -> Project:
    """Apply the text fields this edit changed from ``base`` (each field's ``text_digest``
    when the edit began) to the current version, whoever saved in between: a field only
    one side changed merges; one both changed differently is a Conflict naming it (in
    ``conflicts``). A field without a base counts as changed by this edit."""
    project = get_project(session, project_id)
    edited = {
        name: value
        for name, value in data.model_dump(exclude_unset=True, exclude={"version"}).items()
        if value is not None and not _unchanged(value, base.get(name))
    }
    if data.version != project.version:
        clashes = [
            name
            for name, value in edited.items()
            if not _unchanged(getattr(project, name), base.get(name))
            and not _same_text(getattr(project, name), value)
        ]
        if clashes:
            raise Conflict(
                f"Project {project_id} is at version {project.version}; your edit was based "
                f"on version {data.version}, and both changed {', '.join(clashes)}",
                current=snapshot(project),
                conflicts=clashes,
            )
    changes = {k: v for k, v in edited.items() if not _same_text(getattr(project, k), v)}
    return _apply(session, project, changes, actor)


def _unchanged(value: Any, digest: str | None) -> bool:
    return digest is not None and isinstance(value, str) and text_digest(value) == digest


def _same_text(stored: Any, value: Any) -> bool:
    if isinstance(stored, str) and isinstance(value, str):
        return _lines_as_stored(stored) == _lines_as_stored(value)
    return bool(stored == value)


def _apply(session: Session, project: Project, changes: dict[str, Any], actor: User) -> Project:
    if not changes:
        return project
    before = snapshot(project)
    for name, value in changes.items():
        setattr(project, name, value)
    if DESIGN_FIELDS & changes.keys():
        project.design_version += 1
    project.updated_at = utcnow()
    _flush_or_conflict(session, project.id)
    audit.record(
        session,
        actor=actor,
        action="project.updated",
        entity_type="project",
        entity_id=project.id,
        project_id=project.id,
        before={k: before[k] for k in changes},
        after={k: getattr(project, k) for k in changes},
    )
    live.announce(
        session,
        f"project:{project.id}",
        {"type": "project", "version": project.version, "design_version": project.design_version},
    )
    return project


def _changed_fields(project: Project, data: ProjectUpdate) -> dict[str, Any]:
    given = data.model_dump(exclude_unset=True, exclude={"version"})
    return {
        k: v
        for k, v in given.items()
        if (v is not None or k in CLEARABLE_FIELDS) and getattr(project, k) != v
    }


def _flush_or_conflict(session: Session, project_id: int) -> None:
    """The version column guards the race between reading and writing the row."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(f"Project {project_id} was changed by someone else; reload it") from exc


def next_item_position(session: Session, project_id: int) -> int:
    stmt = select(func.coalesce(func.max(ChecklistItem.position), -1)).where(
        ChecklistItem.project_id == project_id
    )
    return (session.scalar(stmt) or 0) + 1
