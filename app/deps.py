"""Typed dependencies shared by the API and the HTML routers."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.errors import Forbidden, Unauthorized
from app.live import Hub
from app.llm import ModelEndpoint, endpoint_from_settings
from app.models import User
from app.models.enums import Role
from app.services import users
from app.services.templates import TemplateCatalog

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: commit on success, roll back on any error."""
    db = get_db(request)
    factory = db.reader if request.method in SAFE_METHODS else db.writer
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


DbDep = Annotated[Database, Depends(get_db)]


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function" commits before the response is sent, so background work and
# the client's next request both see what this request wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API token from `designgate token create`.")


def get_current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise Unauthorized("Send an API token as 'Authorization: Bearer TOKEN'")
    user = users.user_for_token(session, credentials.credentials)
    if user is None:
        raise Unauthorized("The API token is unknown or revoked")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_writer(user: CurrentUser) -> User:
    if user.role == Role.VIEWER:
        raise Forbidden("Viewers can read but not change anything")
    return user


def require_admin(user: CurrentUser) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("Only an admin can do this")
    return user


Writer = Annotated[User, Depends(require_writer)]
Admin = Annotated[User, Depends(require_admin)]


def get_model_endpoint(settings: SettingsDep) -> ModelEndpoint | None:
    return endpoint_from_settings(settings)


EndpointDep = Annotated[ModelEndpoint | None, Depends(get_model_endpoint)]


def get_template_catalog(request: Request) -> TemplateCatalog:
    """The built-in and file templates the app loaded at start-up."""
    catalog: TemplateCatalog = request.app.state.templates
    return catalog


TemplatesDep = Annotated[TemplateCatalog, Depends(get_template_catalog)]
