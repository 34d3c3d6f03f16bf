from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class LoginAttempt(Base):
    """A failed sign-in, counted against its account and its client address for a while.

    ``key`` is the SHA-256 of the account's email or of the address, never the text itself:
    people type passwords into the email field, and those must not sit in the database.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_attempted_at", "key", "attempted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class EndedWebSession(Base):
    """A browser session signed out on its own device.

    Cookies are signed, not stored, so a copy of a signed-out cookie would otherwise go on
    working until it expires. Its session id is kept here until then (the cookie's signature
    runs out ``MAX_AGE_S`` after it was signed, which was before the sign-out), and after
    that the row is only clutter: sign-outs clear the expired ones.
    """

    __tablename__ = "ended_web_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
