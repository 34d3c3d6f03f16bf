"""Checklist templates: the built-ins and the team's files (read and validated once, when the
app starts) and the templates added through the API (rows). A malformed template is refused
with a message naming its source (the file, or "request body") and the field at fault."""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound, validation_errors
from app.models import ChecklistTemplate, User
from app.schemas.template import TemplateRead, TemplateSpec, stored_template
from app.services import audit

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "checklist_templates"
TEMPLATE_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
REQUEST_BODY = "request body"
BUILT_IN = "built-in"


class TemplateInvalid(InvalidInput):
    """A template that does not validate; ``source`` and ``field`` say where."""

    def __init__(
        self, source: str, field: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        where = field or "(the whole template)"
        super().__init__(f"{source}: {where}: {message}", source=source, field=field, errors=errors)


@dataclass(frozen=True)
class LoadedTemplate:
    spec: TemplateSpec
    source: str


@dataclass(frozen=True)
class TemplateCatalog:
    """The built-in and file templates by key, in the order they were read."""

    by_key: dict[str, LoadedTemplate]


def parse_template(data: object, *, source: str) -> TemplateSpec:
    """Validate one template; refuse it naming the first field at fault."""
    try:
        return TemplateSpec.model_validate(data)
    except ValidationError as exc:
        problems = validation_errors(exc, within=("body",) if source == REQUEST_BODY else ())
        first = problems[0]
        raise TemplateInvalid(source, first["field"], first["message"], errors=problems) from exc


def read_template_file(path: Path, *, source: str | None = None) -> TemplateSpec:
    name = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else _load_yaml(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise TemplateInvalid(name, "", f"cannot be read as YAML or JSON ({reason})") from exc
    return parse_template(data, source=name)


def _load_yaml(text: str) -> object:
    """libyaml's safe loader when PyYAML has it: every start reads the whole catalogue, and
    the pure-Python parser took several times longer."""
    if yaml.__with_libyaml__:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    return yaml.safe_load(text)


def _template_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in TEMPLATE_SUFFIXES and p.is_file())


def load_catalog(templates_dir: Path | None) -> TemplateCatalog:
    """Built-ins, then DESIGNGATE_TEMPLATES_DIR; a bad file or a reused key is refused."""
    by_key: dict[str, LoadedTemplate] = {}
    for path in _template_files(BUILTIN_DIR):
        _add(by_key, read_template_file(path, source=path.name), BUILT_IN, path.name)
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise InvalidInput(f"DESIGNGATE_TEMPLATES_DIR {templates_dir} is not a folder")
        for path in _template_files(templates_dir):
            _add(by_key, read_template_file(path), f"file:{path.name}", str(path))
    return TemplateCatalog(by_key)


def _add(by_key: dict[str, LoadedTemplate], spec: TemplateSpec, source: str, name: str) -> None:
    existing = by_key.get(spec.key)
    if existing is not None:
        raise TemplateInvalid(name, "key", f"{spec.key!r} is already the key of {existing.source}")
    by_key[spec.key] = LoadedTemplate(spec, source)


@lru_cache(maxsize=1)
def builtin_catalog() -> TemplateCatalog:
    return load_catalog(None)


def _row_spec(row: ChecklistTemplate) -> TemplateSpec:
    return stored_template(key=row.key, name=row.name, description=row.description, items=row.items)


def _read(spec: TemplateSpec, source: str) -> TemplateRead:
    return TemplateRead(**spec.model_dump(exclude={"items"}), source=source, items=spec.items)


def list_templates(session: Session, *, catalog: TemplateCatalog) -> list[TemplateRead]:
    """Built-ins and files first, then the ones added through the API, oldest first; each key
    once, as ``find_template`` resolves it (see ``shadowed_templates``)."""
    found = [_read(t.spec, t.source) for t in catalog.by_key.values()]
    rows = session.scalars(
        select(ChecklistTemplate)
        .where(ChecklistTemplate.key.not_in(list(catalog.by_key)))
        .order_by(ChecklistTemplate.id)
    )
    return found + [_read(_row_spec(row), "api") for row in rows]


def shadowed_templates(session: Session, *, catalog: TemplateCatalog) -> list[tuple[str, str]]:
    """Templates added through the API whose key a built-in or file template took later, as
    (key, the catalog's source). The API refuses such a key, but a file added to
    DESIGNGATE_TEMPLATES_DIR, or a built-in that arrives with an upgrade, can still take it;
    refusing to start then would stop the server over a name, so the file's items win (new
    projects get them) and the start-up log says which team template is hidden."""
    keys = session.scalars(
        select(ChecklistTemplate.key)
        .where(ChecklistTemplate.key.in_(list(catalog.by_key)))
        .order_by(ChecklistTemplate.id)
    )
    return [(key, catalog.by_key[key].source) for key in keys]


def find_template(session: Session, *, catalog: TemplateCatalog, key: str) -> TemplateRead | None:
    if key in catalog.by_key:
        loaded = catalog.by_key[key]
        return _read(loaded.spec, loaded.source)
    row = session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.key == key))
    return _read(_row_spec(row), "api") if row is not None else None


def get_template(session: Session, *, catalog: TemplateCatalog, key: str) -> TemplateRead:
    found = find_template(session, catalog=catalog, key=key)
    if found is None:
        raise NotFound(f"There is no checklist template {key!r}")
    return found


def require_template(
    session: Session, *, catalog: TemplateCatalog, key: str, field: str = "template"
) -> TemplateRead:
    """The template named ``key``; an unknown key is invalid input (422) naming ``field``."""
    found = find_template(session, catalog=catalog, key=key)
    if found is None:
        known = ", ".join(t.key for t in list_templates(session, catalog=catalog))
        raise InvalidInput(f"There is no checklist template {key!r}; known: {known}", field=field)
    return found


def create_template(
    session: Session, *, catalog: TemplateCatalog, body: object, actor: User
) -> TemplateRead:
    """Validate a template sent to the API and store it; its key must be new."""
    spec = parse_template(body, source=REQUEST_BODY)
    if find_template(session, catalog=catalog, key=spec.key) is not None:
        raise Conflict(f"A checklist template with key {spec.key!r} already exists")
    row = ChecklistTemplate(
        key=spec.key,
        name=spec.name,
        description=spec.description,
        items=[item.model_dump(mode="json") for item in spec.items],
        created_by_id=actor.id,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(f"A checklist template with key {spec.key!r} already exists") from exc
    audit.record(
        session,
        actor=actor,
        action="template.created",
        entity_type="checklist_template",
        entity_id=row.id,
        after={"key": spec.key, "items": len(spec.items)},
    )
    return _read(spec, "api")
