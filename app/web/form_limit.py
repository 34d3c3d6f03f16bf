"""A signed-in session's pages take forms up to ``web_form_limit`` (app/web/forms.py)."""

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.web.errors import NOT_WEB
from app.web.forms import web_form_limit


class SignedInFormLimit:
    """Raises the body limit (app/problems.py, which must wrap this) to ``web_form_limit`` for
    the pages of a signed-in session. The API and anyone not signed in keep
    DESIGNGATE_MAX_BODY_BYTES: the sign-in form is open to anyone."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        # Nested in the outer limiter, Starlette's limiter sets that one's limit to its own.
        self.raised = RequestBodyLimitMiddleware(app, max_body_size=web_form_limit(max_body_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _signed_in_page(scope):
            await self.raised(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _signed_in_page(scope: Scope) -> bool:
    # The cookie is signed: only a sign-in made this session. Whether it still holds is for
    # the route to say; only the body's size is decided here.
    session = scope.get("session")
    return (
        not str(scope["path"]).startswith(NOT_WEB)
        and isinstance(session, dict)
        and isinstance(session.get("uid"), int)
    )
