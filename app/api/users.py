from fastapi import APIRouter

from app.deps import CurrentUser
from app.schemas.user import UserRead

router = APIRouter(tags=["users"])


@router.get("/me")
def me(user: CurrentUser) -> UserRead:
    """The user the API token belongs to."""
    return UserRead.model_validate(user)
