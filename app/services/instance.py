"""Values an instance makes for itself on first run."""

import secrets

from sqlalchemy.orm import Session

from app.config import Settings
from app.models import InstanceSetting

SECRET_KEY = "secret_key"  # noqa: S105 (the name of the row, not a secret)


def secret_key(session: Session, settings: Settings) -> str:
    """DESIGNGATE_SECRET_KEY if set; otherwise one generated once and kept in the database."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    stored = session.get(InstanceSetting, SECRET_KEY)
    if stored is None:
        stored = InstanceSetting(key=SECRET_KEY, value=secrets.token_urlsafe(48))
        session.add(stored)
        session.flush()
    return stored.value
