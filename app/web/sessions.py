"""Signed cookie sessions for the browser, keyed with the instance's secret key.

Starlette's SessionMiddleware wants its key when the app is built, but the key may
only exist once start-up has read (or made) it in the database; this middleware
reads ``app.state.secret_key`` on each request instead.
"""

import json
from base64 import b64decode, b64encode
from typing import Any

import itsdangerous
from itsdangerous.exc import BadSignature
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE_NAME = "designgate_session"
MAX_AGE_S = 14 * 24 * 3600
SALT = "designgate.web-session"


class CookieSessionMiddleware:
    """``request.session`` for HTML routes: HttpOnly, SameSite=Lax, signed, 14 days."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/api/", "/static/")):
            await self.app(scope, receive, send)
            return
        signer = _signer(scope)
        connection = HTTPConnection(scope)
        scope["session"] = _load(signer, connection.cookies.get(COOKIE_NAME))
        had_cookie = COOKIE_NAME in connection.cookies
        original = json.dumps(scope["session"], sort_keys=True)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                current = json.dumps(scope["session"], sort_keys=True)
                if current != original or (had_cookie and not scope["session"]):
                    headers = MutableHeaders(scope=message)
                    headers.append("Set-Cookie", _cookie(signer, scope, scope["session"]))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _signer(scope: Scope) -> itsdangerous.TimestampSigner:
    secret: str = scope["app"].state.secret_key
    return itsdangerous.TimestampSigner(secret, salt=SALT)


def _load(signer: itsdangerous.TimestampSigner, raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = signer.unsign(raw.encode(), max_age=MAX_AGE_S)
        loaded = json.loads(b64decode(data))
    except (BadSignature, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _cookie(signer: itsdangerous.TimestampSigner, scope: Scope, session: dict[str, Any]) -> str:
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    if not session:
        return f"{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    value = signer.sign(b64encode(json.dumps(session).encode())).decode()
    return f"{COOKIE_NAME}={value}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly; SameSite=Lax{secure}"
