from datetime import datetime

from app.models.enums import Role
from app.schemas.common import Read


class UserRead(Read):
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime


class TokenRead(Read):
    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
