from typing import TYPE_CHECKING

from pydantic import BaseModel

from app.models.enums import Category

if TYPE_CHECKING:
    from app.services.gate import GateItem, GateState


class GateItemRead(BaseModel):
    item_id: int
    category: Category
    title: str


class GateRead(BaseModel):
    open: bool
    missing: list[GateItemRead]
    stale: list[GateItemRead]
    decided: int
    total: int


def gate_read(state: "GateState") -> GateRead:
    def items(entries: "tuple[GateItem, ...]") -> list[GateItemRead]:
        return [
            GateItemRead(item_id=e.item_id, category=Category(e.category), title=e.title)
            for e in entries
        ]

    return GateRead(
        open=state.open,
        missing=items(state.missing),
        stale=items(state.stale),
        decided=state.decided,
        total=state.total,
    )
