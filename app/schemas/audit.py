from datetime import datetime
from typing import Any

from app.schemas.common import Read


class AuditEventRead(Read):
    id: int
    actor_id: int | None
    action: str
    entity_type: str
    entity_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime
