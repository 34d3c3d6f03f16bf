from fastapi import APIRouter, status
from fastapi.responses import Response

from app.api.params import PathId
from app.deps import CurrentUser, SessionDep
from app.schemas.user import TokenRead
from app.services import users

router = APIRouter(tags=["tokens"])


@router.get("/tokens")
def list_tokens(session: SessionDep, user: CurrentUser) -> list[TokenRead]:
    """The caller's API tokens (never their secret), revoked ones included."""
    return [TokenRead.model_validate(t) for t in users.list_tokens(session, user=user)]


# Any signed-in user, viewers too, may revoke their own token: a leaked token must not
# wait for an admin. Someone else's token needs an admin.
# Response, not the default JSONResponse: a 204 carries no Content-Type.
@router.delete(
    "/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
def revoke_token(token_id: PathId, session: SessionDep, user: CurrentUser) -> None:
    """Revoke an API token of yours (or anyone's, as an admin); it is refused from now on."""
    users.revoke_token(session, token_id=token_id, actor=user)
