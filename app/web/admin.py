"""Admin pages: users and their roles, API tokens."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from app.api.params import FormId, PathId
from app.deps import SessionDep
from app.errors import Conflict, InvalidInput
from app.models.enums import Role
from app.services import users
from app.web.deps import WebAdmin, check_csrf, require_setup_done
from app.web.forms import FieldErrors, service_field_error
from app.web.templating import page

router = APIRouter(prefix="/admin", dependencies=[Depends(require_setup_done), Depends(check_csrf)])


def _users_page(
    request: Request,
    session: Any,
    *,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    status: int = 200,
    notice: str | None = None,
    refusal: str | None = None,
) -> Response:
    context = {
        "users": users.list_users(session),
        "values": values or {},
        "errors": errors or {},
        "notice": notice,
        "refusal": refusal,
    }
    return page(
        request, "admin_users.html", context, partial="_admin_users.html", status_code=status
    )


@router.get("/users", response_class=HTMLResponse)
def user_list(request: Request, session: SessionDep, user: WebAdmin) -> Response:
    """Every user and their role; a form for a new one."""
    return _users_page(request, session)


@router.post("/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    session: SessionDep,
    admin: WebAdmin,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "member",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Create a user with a first password they can use to sign in."""
    values = {"email": email, "name": name, "role": role}
    try:
        chosen = Role(role)
        created = users.create_user(
            session, email=email, name=name, role=chosen, password=password, actor=admin
        )
    except ValueError:
        return _users_page(
            request, session, values=values, errors={"role": "Choose a role."}, status=422
        )
    except InvalidInput as exc:
        errors = service_field_error(exc)
        return _users_page(request, session, values=values, errors=errors, status=422)
    except Conflict as exc:
        return _users_page(
            request, session, values=values, errors={"email": exc.detail}, status=409
        )
    return _users_page(request, session, notice=f"Created {created.email} as {created.role}.")


@router.post("/users/{user_id}/role", response_class=HTMLResponse)
def change_role(
    request: Request,
    user_id: PathId,
    session: SessionDep,
    admin: WebAdmin,
    role: Annotated[str, Form()],
) -> Response:
    """Change a user's role (the last admin stays an admin)."""
    try:
        chosen = Role(role)
    except ValueError as exc:
        raise InvalidInput("Choose admin, member or viewer", field="role") from exc
    try:
        changed = users.change_role(session, user_id=user_id, role=chosen, actor=admin)
    except Conflict as exc:
        return _refused(request, session, exc)
    return _users_page(request, session, notice=f"{changed.email} is now {changed.role}.")


def _refused(request: Request, session: Any, refusal: Conflict) -> Response:
    """The whole list again, so the refused row shows what its user still has and the last
    change's notice gives way to the refusal."""
    return _users_page(request, session, refusal=f"{refusal.detail}.", status=409)


@router.post("/users/{user_id}/deactivate", response_class=HTMLResponse)
def deactivate_user(
    request: Request, user_id: PathId, session: SessionDep, admin: WebAdmin
) -> Response:
    """Deactivate a user: their sessions, API tokens and live pages stop at once (the last
    active admin stays)."""
    try:
        changed = users.set_active(session, user_id=user_id, active=False, actor=admin)
    except Conflict as exc:
        return _refused(request, session, exc)
    notice = f"{changed.email} is deactivated; their sessions and API tokens no longer work."
    return _users_page(request, session, notice=notice)


@router.post("/users/{user_id}/reactivate", response_class=HTMLResponse)
def reactivate_user(
    request: Request, user_id: PathId, session: SessionDep, admin: WebAdmin
) -> Response:
    """Reactivate a user: their API tokens work again, and they can sign in."""
    changed = users.set_active(session, user_id=user_id, active=True, actor=admin)
    return _users_page(request, session, notice=f"{changed.email} is active again.")


def _tokens_page(
    request: Request,
    session: Any,
    *,
    new_token: str | None = None,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    status: int = 200,
) -> Response:
    context = {
        "tokens": users.list_all_tokens(session),
        "users": users.list_users(session),
        "new_token": new_token,
        "values": values or {},
        "errors": errors or {},
    }
    return page(
        request, "admin_tokens.html", context, partial="_admin_tokens.html", status_code=status
    )


@router.get("/tokens", response_class=HTMLResponse)
def token_list(request: Request, session: SessionDep, admin: WebAdmin) -> Response:
    """Every API token: owner, label, when it was last used, whether it is revoked."""
    return _tokens_page(request, session)


@router.post("/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    session: SessionDep,
    admin: WebAdmin,
    user_id: FormId,
    label: Annotated[str, Form()] = "",
) -> Response:
    """Create a token for a user; its text is shown this once and never stored."""
    owner = users.get_user(session, user_id)
    try:
        _token, plain = users.create_token(session, user=owner, label=label, actor=admin)
    except InvalidInput as exc:
        errors = service_field_error(exc)
        return _tokens_page(request, session, values={"label": label}, errors=errors, status=422)
    return _tokens_page(request, session, new_token=plain)


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(
    request: Request, token_id: PathId, session: SessionDep, admin: WebAdmin
) -> Response:
    """Revoke a token: requests with it get 401 from now on."""
    users.revoke_token(session, token_id=token_id, actor=admin)
    return _tokens_page(request, session)
