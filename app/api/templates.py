from typing import Annotated, Any

from fastapi import APIRouter, Body, status

from app.deps import CurrentUser, SessionDep, TemplatesDep, Writer
from app.schemas.template import TemplateRead, TemplateSpec
from app.services import templates

router = APIRouter(tags=["templates"])


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """The schema with its local $refs replaced by what they name (OpenAPI has no $defs)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inlined(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
        return {k: _inlined(v, definitions) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(v, definitions) for v in schema]
    return schema


_SPEC_SCHEMA = TemplateSpec.model_json_schema()
# The body is validated by the service, so a bad template is refused naming "request body"
# and the field, exactly as a bad template file is; the schema is still documented.
_TEMPLATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inlined(_SPEC_SCHEMA, _SPEC_SCHEMA.get("$defs", {}))}
        },
    }
}


@router.get("/templates")
def list_templates(
    session: SessionDep, user: CurrentUser, catalog: TemplatesDep
) -> list[TemplateRead]:
    """Every checklist template (built-in, from DESIGNGATE_TEMPLATES_DIR, added here) with items."""
    return templates.list_templates(session, catalog=catalog)


@router.get("/templates/{key}")
def get_template(
    key: str, session: SessionDep, user: CurrentUser, catalog: TemplatesDep
) -> TemplateRead:
    """One checklist template with its items."""
    return templates.get_template(session, catalog=catalog, key=key)


@router.post("/templates", status_code=status.HTTP_201_CREATED, openapi_extra=_TEMPLATE_BODY)
def create_template(
    body: Annotated[Any, Body(include_in_schema=False)],
    session: SessionDep,
    user: Writer,
    catalog: TemplatesDep,
) -> TemplateRead:
    """Add a team template `{key, name, description?, items: [{category, title, question}]}`."""
    return templates.create_template(session, catalog=catalog, body=body, actor=user)
