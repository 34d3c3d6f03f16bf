"""Code generation: allowed only through the gate, streamed, kept when it fails, and
marked outdated (derived, never stored) once a decision it was based on moves on."""

import asyncio
import difflib
import logging
import time
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import live
from app.db import Database, OutageWarning, utcnow, when_available
from app.errors import GateClosed, ModelNotConfigured, NotFound
from app.live import Hub
from app.llm import LLMFailure, ModelEndpoint
from app.models import ChecklistItem, Decision, Generation, User
from app.models.enums import GenerationStatus
from app.runners import carries_on, left_behind, runner_of
from app.services import audit, design_pack, model_work, prompts
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
# Generations waiting for the model or being written.
UNFINISHED = Generation.status.in_((GenerationStatus.PENDING, GenerationStatus.STREAMING))
log = logging.getLogger(__name__)
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
    pack = design_pack.build(session, project)
    generation = Generation(
        project_id=project.id,
        status=GenerationStatus.PENDING,
        runner=runner_of(session),
        model=endpoint.model,
        instructions=instructions or "",
        prompt=prompts.chat(
            "generate_code", design_pack=design_pack.markdown(pack), instructions=instructions
        ),
        based_on=[_basis(entry.entry) for entry in pack.items],
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
    with model_work.running():
        await _run_generation(db, calls, generation_id)


async def _run_generation(db: Database, calls: ModelCalls, generation_id: int) -> None:
    what = f"generation {generation_id}"
    model, prompt = await when_available(what, _mark_streaming, db, generation_id)
    trace = CallTrace()
    progress = _Progress()

    def outcome(status: GenerationStatus, error: str | None) -> Outcome:
        return Outcome(progress.text, status, error, trace.model, progress.saved, trace)

    try:
        await _stream_into(db, generation_id, calls.stream(model, prompt, trace), progress)
    except LLMFailure as failure:
        await when_available(what, _finish, db, generation_id, outcome(ERROR, failure.reason))
        return
    except asyncio.CancelledError:
        ended = outcome(ERROR, INTERRUPTED)
        await asyncio.shield(when_available(what, _finish, db, generation_id, ended))
        raise
    except Exception as exc:
        # A bug must still leave a stored reason, not a generation that streams forever.
        await when_available(what, _finish, db, generation_id, outcome(ERROR, repr(exc)[:300]))
        raise
    await when_available(what, _finish, db, generation_id, outcome(COMPLETE, None))


@dataclass
class _Progress:
    """The text so far, and how much of it has been saved and announced."""

    parts: list[str] = field(default_factory=list)
    saved: int = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def _stream_into(
    db: Database, generation_id: int, pieces: AsyncIterator[str], progress: _Progress
) -> None:
    """Collect the pieces, writing the text so far out every interval."""
    last_saved = time.monotonic()
    outage = OutageWarning(f"generation {generation_id}'s text")
    async for piece in pieces:
        progress.parts.append(piece)
        if time.monotonic() - last_saved >= PERSIST_INTERVAL_S:
            content = progress.text
            try:
                await asyncio.to_thread(_save_progress, db, generation_id, content, progress.saved)
            except OperationalError as exc:
                # The text stays here, for the next save or the final one, which waits for
                # the database: the model's stream is not given up for an outage.
                outage.failed(exc)
                last_saved = time.monotonic()
                continue
            progress.saved, last_saved = len(content), time.monotonic()
            outage.succeeded()


@dataclass(frozen=True)
class Outcome:
    """How a generation ended: its text, status, the reason it failed, who wrote it."""

    content: str
    status: GenerationStatus
    error: str | None
    model: str | None
    saved: int = 0  # how much of the text earlier events already carried
    # Every attempt behind it and their billed tokens, the failed ones' too.
    trace: CallTrace = field(default_factory=CallTrace)

    def usage_values(self) -> dict[str, Any]:
        usage = self.trace.usage
        return {
            "attempts": list(self.trace.attempts),
            "tokens_in": usage.tokens_in,
            "tokens_out": usage.tokens_out,
            "cost": usage.cost,
        }


def _mark_streaming(db: Database, generation_id: int) -> tuple[str, list[dict[str, Any]]]:
    with db.transaction() as session:
        generation = get_generation(session, generation_id)
        generation.status = GenerationStatus.STREAMING
        return generation.model, list(generation.prompt)


def _save_progress(db: Database, generation_id: int, content: str, saved: int) -> None:
    """Store the text so far; announce what was added since the last save (``saved`` chars).
    A generation given up meanwhile (``_keep_given_up``) is not written back."""
    with db.transaction() as session:
        saving = update(Generation).where(Generation.id == generation_id, UNFINISHED)
        if session.execute(saving.values(content=content).returning(Generation.id)).first():
            _announce_generation(session, generation_id, GenerationStatus.STREAMING, content, saved)


def _finish(db: Database, generation_id: int, outcome: Outcome) -> None:
    values: dict[str, Any] = {
        "content": outcome.content,
        "status": outcome.status,
        "error": outcome.error,
        "completed_at": utcnow(),
        **outcome.usage_values(),
    }
    if outcome.model:
        values["model"] = outcome.model  # a fallback model may have written it
    with db.transaction() as session:
        finishing = update(Generation).where(Generation.id == generation_id, UNFINISHED)
        if not session.execute(finishing.values(**values).returning(Generation.id)).first():
            _keep_given_up(session, generation_id, outcome)
            return
        _announce_generation(
            session, generation_id, outcome.status, outcome.content, outcome.saved, outcome.error
        )


def _keep_given_up(session: Session, generation_id: int, outcome: Outcome) -> None:
    """Another server process gave this generation up while this one still streamed it (it
    took this process for gone, app/services/recovery.py) and announced it. Its status and
    reason stand; the text this process has is kept in place of the shorter text stored, so
    nothing the model wrote is lost either."""
    generation = session.get(Generation, generation_id)
    if generation is None or _saved_already(generation, outcome):
        return
    # The tokens were spent all the same.
    for name, value in outcome.usage_values().items():
        setattr(generation, name, value)
    content = outcome.content
    log.warning(
        "generation %d was marked %s by another server process while this one streamed it;"
        " its status stands",
        generation_id,
        generation.status,
    )
    stored = generation.content
    if not carries_on(stored, content):
        return
    generation.content = content
    _announce_generation(
        session,
        generation_id,
        GenerationStatus(generation.status),
        content,
        len(stored),
        generation.error,
    )


def _saved_already(generation: Generation, outcome: Outcome) -> bool:
    """Whether this is the process's own final save, whose commit reached the database but
    whose answer was lost to an outage, so that ``when_available`` made it again."""
    stored = (generation.status, generation.content, generation.error)
    return stored == (outcome.status, outcome.content, outcome.error)


def _announce_generation(
    session: Session,
    generation_id: int,
    status: GenerationStatus,
    content: str,
    saved: int,
    error: str | None = None,
) -> None:
    """``length`` is the whole text's length, ``delta`` its end since the previous event."""
    event = {
        "type": "generation",
        "id": generation_id,
        "status": status,
        "length": len(content),
        "delta": content[saved:],
        "error": error,
    }
    live.announce(session, f"generation:{generation_id}", event)


def mark_interrupted(session: Session, *, runners: Collection[int] | None = None) -> int:
    """Generations left running by a server that is gone will never finish: at start-up all
    of them, while serving those of ``runners``; each announced, with the text it kept."""
    marked = session.execute(
        update(Generation)
        .where(left_behind(session, Generation.runner, UNFINISHED, only=runners))
        .values(status=GenerationStatus.ERROR, error=INTERRUPTED, completed_at=utcnow())
        .returning(Generation.id, Generation.content)
    ).all()
    for generation_id, content in marked:
        saved = len(content)
        _announce_generation(
            session, generation_id, GenerationStatus.ERROR, content, saved, INTERRUPTED
        )
    return len(marked)


FINISHED = frozenset({GenerationStatus.COMPLETE, GenerationStatus.ERROR})


@dataclass(frozen=True)
class OutdatedBecause:
    """One reason a generation no longer matches the design."""

    item_id: int
    title: str
    reason: str  # superseded, stale, added or removed
    detail: str


@dataclass(frozen=True)
class GenerationView:
    generation: Generation
    outdated_because: tuple[OutdatedBecause, ...]

    @property
    def outdated(self) -> bool:
        return bool(self.outdated_because)


def outdated_because(
    generation: Generation, current: Sequence[ItemWithDecision]
) -> tuple[OutdatedBecause, ...]:
    """Compare the revisions a generation used with the checklist as it is now."""
    by_item = {entry.item.id: entry for entry in current}
    used = {int(basis["item_id"]): basis for basis in generation.based_on}
    reasons = [_basis_reason(basis, by_item.get(item_id)) for item_id, basis in used.items()]
    reasons += [
        OutdatedBecause(e.item.id, e.item.title, "added", "added to the checklist since")
        for e in current
        if e.item.id not in used
    ]
    return tuple(reason for reason in reasons if reason is not None)


def _basis_reason(basis: dict[str, Any], entry: ItemWithDecision | None) -> OutdatedBecause | None:
    item_id, revision = int(basis["item_id"]), int(basis["revision"])
    if entry is None:
        return OutdatedBecause(item_id, "", "removed", "removed from the checklist")
    title = entry.item.title
    if entry.decision is None or entry.decision.id != basis["decision_id"]:
        now = entry.decision.revision if entry.decision else 0
        detail = f"revision {revision} was superseded by revision {now}"
        return OutdatedBecause(item_id, title, "superseded", detail)
    if entry.stale:
        detail = f"revision {revision} went stale when the design changed"
        return OutdatedBecause(item_id, title, "stale", detail)
    return None


def view_generation(session: Session, generation_id: int) -> GenerationView:
    generation = get_generation(session, generation_id)
    current = checklist(session, get_project(session, generation.project_id))
    return GenerationView(generation, outdated_because(generation, current))


def generation_views(session: Session, *, project_id: int) -> list[GenerationView]:
    """Every generation of the project, oldest first, each judged against the checklist now."""
    current = checklist(session, get_project(session, project_id))
    return [
        GenerationView(g, outdated_because(g, current))
        for g in list_generations(session, project_id=project_id)
    ]


@dataclass(frozen=True)
class GenerationComparison:
    from_id: int
    to_id: int
    content_diff: str
    basis_diff: str


def compare_generations(session: Session, *, from_id: int, to_id: int) -> GenerationComparison:
    """Unified diffs of two generations' code and of the decisions each was based on."""
    old, new = get_generation(session, from_id), get_generation(session, to_id)
    return GenerationComparison(
        from_id=old.id,
        to_id=new.id,
        content_diff=_unified(old.content, new.content, old.id, new.id),
        basis_diff=_unified(_basis_text(session, old), _basis_text(session, new), old.id, new.id),
    )


def _unified(old: str, new: str, old_id: int, new_id: int) -> str:
    lines = difflib.unified_diff(
        old.splitlines(),
        new.splitlines(),
        fromfile=f"generation-{old_id}",
        tofile=f"generation-{new_id}",
        lineterm="",
    )
    return "\n".join(lines)


def _basis_text(session: Session, generation: Generation) -> str:
    """The decision revisions a generation used, one block per item, in checklist order."""
    ids = [int(basis["decision_id"]) for basis in generation.based_on]
    rows = session.execute(
        select(Decision, ChecklistItem)
        .join(ChecklistItem, ChecklistItem.id == Decision.item_id)
        .where(Decision.id.in_(ids))
        .order_by(ChecklistItem.position, ChecklistItem.id)
    )
    return "\n".join(
        f"[{item.category}] {item.title}\n"
        f"  revision {decision.revision} ({decision.status}): {decision.summary}\n"
        f"  alternatives rejected: {'; '.join(decision.alternatives) or '(none)'}"
        for decision, item in rows
    )


# Without any event for this long, the stream re-reads the stored text: a lost event or a
# generation running in another process can delay the stream but never stall it.
STREAM_POLL_S = 5.0


async def stream_text(
    db: Database, hub: Hub, generation_id: int, poll_s: float = STREAM_POLL_S
) -> AsyncIterator[dict[str, Any]]:
    """The generation's text as it arrives: first what is stored, then each new piece, then
    the end. Yields ``{"event": "content" | "delta" | "done", ...}``."""
    async with hub.subscribe(f"generation:{generation_id}") as subscription:
        stored = await asyncio.to_thread(_stored, db, generation_id)
        status, error, sent = stored.status, stored.error, len(stored.content)
        yield {"event": "content", "text": stored.content, "status": status}
        while status not in FINISHED:
            event = await subscription.get(timeout=poll_s)
            text = _new_text(event, sent) if event is not None else None
            if event is None or text is None:  # silence, a gap or a reset: re-read the truth
                stored = await asyncio.to_thread(_stored, db, generation_id)
                status, error, text = stored.status, stored.error, stored.content[sent:]
            else:
                status, error = event.get("status", status), event.get("error")
            if text:
                sent += len(text)
                yield {"event": "delta", "text": text}
        yield {"event": "done", "status": status, "error": error}


def _stored(db: Database, generation_id: int) -> Generation:
    with db.transaction(write=False) as session:
        return get_generation(session, generation_id)


def _new_text(event: dict[str, Any], sent: int) -> str | None:
    """The part of an event's delta not sent yet; None when text before it was missed."""
    length, delta = event.get("length"), event.get("delta")
    if event.get("type") != "generation" or not isinstance(delta, str):
        return None
    if not isinstance(length, int) or length - len(delta) > sent:
        return None
    return delta[len(delta) - (length - sent) :] if length > sent else ""
