from fastapi import APIRouter

from app.api.params import PathId
from app.deps import Admin, CurrentUser, SessionDep
from app.schemas.user import UserRead
from app.services import users

router = APIRouter(tags=["users"])


@router.get("/me")
def me(user: CurrentUser) -> UserRead:
    """The user the API token belongs to."""
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/deactivate")
def deactivate_user(user_id: PathId, session: SessionDep, admin: Admin) -> UserRead:
    """Deactivate a user (admins only): their sessions, API tokens and live streams stop at
    once; the last active admin cannot be deactivated (409)."""
    user = users.set_active(session, user_id=user_id, active=False, actor=admin)
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/reactivate")
def reactivate_user(user_id: PathId, session: SessionDep, admin: Admin) -> UserRead:
    """Reactivate a user (admins only): their API tokens work again; they sign in anew."""
    user = users.set_active(session, user_id=user_id, active=True, actor=admin)
    return UserRead.model_validate(user)
