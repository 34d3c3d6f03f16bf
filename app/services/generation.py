"""Code generation: allowed only through the gate, streamed, kept when it fails."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import live
from app.db import Database, utcnow
from app.errors import GateClosed, ModelNotConfigured, NotFound
from app.llm import LLMFailure, ModelEndpoint
from app.models import Generation, User
from app.models.enums import GenerationStatus
from app.services import audit, prompts
from app.services.decisions import ItemWithDecision, checklist
from app.services.gate import GateItem, gate
from app.services.model_calls import CallTrace, ModelCalls
from app.services.projects import get_project

# Partial output is written at least this often, so a crash loses under a second.
PERSIST_INTERVAL_S = 0.25
HOW_TO_CONFIGURE = (
    "Set DESIGNGATE_MODEL to a litellm model string (for example openai/gpt-4o-mini or "
    "ollama/llama3), and DESIGNGATE_LLM_API_BASE / DESIGNGATE_LLM_API_KEY if the provider "
    "needs them."
)
INTERRUPTED = "Interrupted: the server stopped while the model was still writing."
ERROR, COMPLETE = GenerationStatus.ERROR, GenerationStatus.COMPLETE


def gate_items_json(items: tuple[GateItem, ...]) -> list[dict[str, Any]]:
    return [{"item_id": i.item_id, "category": i.category, "title": i.title} for i in items]


def get_generation(session: Session, generation_id: int) -> Generation:
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise NotFound(f"Generation {generation_id} does not exist")
    return generation


def list_generations(session: Session, *, project_id: int) -> list[Generation]:
    get_project(session, project_id)
    stmt = select(Generation).where(Generation.project_id == project_id).order_by(Generation.id)
    return list(session.scalars(stmt))


def start_generation(
    session: Session,
    *,
    project_id: int,
    actor: User,
    instructions: str | None,
    endpoint: ModelEndpoint | None,
) -> Generation:
    """Refuse while the gate is closed; otherwise store a pending generation and its prompt."""
    project = get_project(session, project_id)
    state = gate(session, project)
    if not state.open:
        raise GateClosed(
            f"Code generation is refused: {state.reason()}",
            missing=gate_items_json(state.missing),
            stale=gate_items_json(state.stale),
        )
    if endpoint is None:
        raise ModelNotConfigured(HOW_TO_CONFIGURE)
    items = checklist(session, project)
    generation = Generation(
        project_id=project.id,
        status=GenerationStatus.PENDING,
        model=endpoint.model,
        instructions=instructions or "",
        prompt=prompts.chat(
            "generate_code", project=project, items=items, instructions=instructions
        ),
        based_on=[_basis(entry) for entry in items],
        created_by_id=actor.id,
    )
    session.add(generation)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="generation.started",
        entity_type="generation",
        entity_id=generation.id,
        project_id=project.id,
        after={"model": endpoint.model, "based_on": generation.based_on},
    )
    live.announce(session, f"project:{project.id}", {"type": "generation", "id": generation.id})
    return generation


def _basis(entry: ItemWithDecision) -> dict[str, int]:
    assert entry.decision is not None, "the gate guarantees a decision on every item"
    return {
        "decision_id": entry.decision.id,
        "item_id": entry.item.id,
        "revision": entry.decision.revision,
    }


async def run_generation(db: Database, calls: ModelCalls, generation_id: int) -> None:
    """Stream the model's reply into the stored generation; keep partial text on failure.

    The call goes through ModelCalls like debate replies do: bounded retries with backoff
    while nothing has streamed, the fallback models, and the per-model circuit breaker.
    """
    model, prompt = await asyncio.to_thread(_mark_streaming, db, generation_id)
    trace = CallTrace()
    parts: list[str] = []

    def outcome(status: GenerationStatus, error: str | None) -> Outcome:
        return Outcome("".join(parts), status, error, trace.model)

    try:
        await _stream_into(db, generation_id, calls.stream(model, prompt, trace), parts)
    except LLMFailure as failure:
        await asyncio.to_thread(_finish, db, generation_id, outcome(ERROR, failure.reason))
        return
    except asyncio.CancelledError:
        ended = outcome(ERROR, INTERRUPTED)
        await asyncio.shield(asyncio.to_thread(_finish, db, generation_id, ended))
        raise
    except Exception as exc:
        # A bug must still leave a stored reason, not a generation that streams forever.
        await asyncio.to_thread(_finish, db, generation_id, outcome(ERROR, repr(exc)[:300]))
        raise
    await asyncio.to_thread(_finish, db, generation_id, outcome(COMPLETE, None))


async def _stream_into(
    db: Database, generation_id: int, pieces: AsyncIterator[str], parts: list[str]
) -> None:
    """Collect the pieces into ``parts``, writing the text so far out every interval."""
    last_saved = time.monotonic()
    async for piece in pieces:
        parts.append(piece)
        if time.monotonic() - last_saved >= PERSIST_INTERVAL_S:
            await asyncio.to_thread(_save_progress, db, generation_id, "".join(parts))
            last_saved = time.monotonic()


@dataclass(frozen=True)
class Outcome:
    """How a generation ended: its text, status, the reason it failed, who wrote it."""

    content: str
    status: GenerationStatus
    error: str | None
    model: str | None


def _mark_streaming(db: Database, generation_id: int) -> tuple[str, list[dict[str, Any]]]:
    with db.transaction() as session:
        generation = get_generation(session, generation_id)
        generation.status = GenerationStatus.STREAMING
        return generation.model, list(generation.prompt)


def _save_progress(db: Database, generation_id: int, content: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(Generation).where(Generation.id == generation_id).values(content=content)
        )
        _announce_generation(session, generation_id, GenerationStatus.STREAMING, len(content))


def _finish(db: Database, generation_id: int, outcome: Outcome) -> None:
    values: dict[str, Any] = {
        "content": outcome.content,
        "status": outcome.status,
        "error": outcome.error,
        "completed_at": utcnow(),
    }
    if outcome.model:
        values["model"] = outcome.model  # a fallback model may have written it
    with db.transaction() as session:
        session.execute(update(Generation).where(Generation.id == generation_id).values(**values))
        _announce_generation(session, generation_id, outcome.status, len(outcome.content))


def _announce_generation(
    session: Session, generation_id: int, status: GenerationStatus, length: int
) -> None:
    event = {"type": "generation", "id": generation_id, "status": status, "length": length}
    live.announce(session, f"generation:{generation_id}", event)


def mark_interrupted(session: Session) -> int:
    """At start-up: generations left running by a stopped server will never finish."""
    unfinished = (GenerationStatus.PENDING, GenerationStatus.STREAMING)
    result = session.execute(
        update(Generation)
        .where(Generation.status.in_(unfinished))
        .values(status=GenerationStatus.ERROR, error=INTERRUPTED, completed_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
