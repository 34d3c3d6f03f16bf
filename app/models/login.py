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
