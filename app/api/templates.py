from typing import Annotated, Any

from fastapi import APIRouter, Body, status

from app.deps import CurrentUser, SessionDep, TemplatesDep, Writer
from app.schemas.template import TemplateRead, TemplateSpec
from app.services import templates

router = APIRouter(tags=["templates"])

# The body is validated by the service, so a bad template is refused naming "request body"
# and the field, exactly as a bad template file is; the schema is still documented.
_TEMPLATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TemplateSpec.model_json_schema()}},
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
