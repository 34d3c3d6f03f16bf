"""Drafts: a review started from the one-line request a developer would have typed into a
coding assistant. The model (when one is configured) proposes a problem statement, the
closest template and focus items; the team accepts, edits or drops each proposal, and only
the accepted ones become checklist items of the project made from the draft."""

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import Database, utcnow, when_available
from app.errors import Conflict, NotFound
from app.llm import LLMFailure, ModelEndpoint
from app.models import Draft, DraftProposal, Project, User
from app.models.enums import Category, DraftStatus, ProposalStatus
from app.runners import left_behind, runner_of
from app.schemas.checklist import ChecklistItemCreate
from app.schemas.common import MAX_TEXT, RequiredText, Title
from app.schemas.draft import (
    DraftCreate,
    DraftProjectCreate,
    DraftReply,
    DraftUpdate,
    ProposalCreate,
    ProposalUpdate,
)
from app.schemas.project import ProjectCreate
from app.schemas.template import DEFAULT_TEMPLATE
from app.services import audit, projects, prompts, templates
from app.services.catalog import CATEGORY_CONCERNS
from app.services.model_calls import CallTrace, ModelCalls
from app.services.templates import TemplateCatalog

MAX_PROPOSALS = 12
Usable = TypeVar("Usable", bound=BaseModel)
NO_MODEL = (
    "No model is configured, so this draft uses the {template} template alone, with no "
    "proposals. Set DESIGNGATE_MODEL to have requests turned into proposals."
)
MODEL_FAILED = "The model could not turn the request into proposals ({reason}); this draft "
MODEL_FAILED += "uses the {template} template alone."
INTERRUPTED = "The server stopped before the model answered; this draft uses the template alone."
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DraftView:
    draft: Draft
    proposals: list[DraftProposal]


class _Proposed(BaseModel):
    """One proposal as the model wrote it; a malformed one is skipped, not fatal."""

    category: Category
    title: Title
    question: RequiredText


def get_draft(session: Session, draft_id: int, *, for_update: bool = False) -> Draft:
    """The draft; ``for_update`` locks its row until the transaction ends (PostgreSQL)."""
    draft = session.get(Draft, draft_id, with_for_update=True if for_update else None)
    if draft is None:
        raise NotFound(f"Draft {draft_id} does not exist")
    return draft


def _proposals(session: Session, draft_ids: list[int]) -> list[DraftProposal]:
    stmt = (
        select(DraftProposal)
        .where(DraftProposal.draft_id.in_(draft_ids))
        .order_by(DraftProposal.position, DraftProposal.id)
    )
    return list(session.scalars(stmt))


def view_draft(session: Session, draft_id: int) -> DraftView:
    draft = get_draft(session, draft_id)
    return DraftView(draft, _proposals(session, [draft.id]))


def list_drafts(session: Session) -> list[DraftView]:
    """Every draft, newest first."""
    found = list(session.scalars(select(Draft).order_by(Draft.id.desc())))
    proposals = _proposals(session, [d.id for d in found])
    return [DraftView(d, [p for p in proposals if p.draft_id == d.id]) for d in found]


def create_draft(
    session: Session,
    *,
    data: DraftCreate,
    actor: User,
    catalog: TemplateCatalog,
    endpoint: ModelEndpoint | None,
) -> DraftView:
    """Store the request; with a model, the proposals are asked for in the background."""
    key = data.template or DEFAULT_TEMPLATE
    templates.require_template(session, catalog=catalog, key=key)
    draft = Draft(
        request=data.request,
        name=_name_from(data.request),
        problem=data.request,
        template=key,
        status=DraftStatus.READY if endpoint is None else DraftStatus.PENDING,
        runner=runner_of(session) if endpoint else None,
        model=endpoint.model if endpoint else None,
        note=NO_MODEL.format(template=key) if endpoint is None else "",
        prompt=_prompt(session, data.request, catalog) if endpoint else [],
        created_by_id=actor.id,
    )
    session.add(draft)
    session.flush()
    _audit(session, actor, "draft.created", draft, {"request": data.request})
    return DraftView(draft, [])


def _name_from(request: str) -> str:
    words = " ".join(request.split()[:8])
    return words if len(words) <= 80 else words[:79] + "…"


def _prompt(session: Session, request: str, catalog: TemplateCatalog) -> list[dict[str, Any]]:
    return prompts.chat(
        "draft_from_request",
        request=request,
        templates=templates.list_templates(session, catalog=catalog),
        categories=[(category.value, CATEGORY_CONCERNS[category]) for category in Category],
    )


def _audit(session: Session, actor: User, action: str, draft: Draft, after: dict[str, Any]) -> None:
    audit.record(
        session, actor=actor, action=action, entity_type="draft", entity_id=draft.id, after=after
    )


async def run_draft(
    db: Database,
    draft_id: int,
    calls: ModelCalls,
    catalog: TemplateCatalog,
    *,
    model: str,
    keep_template: bool,
) -> None:
    """Ask the model, outside any transaction; store its proposals, or why there are none.

    The call goes through ``calls`` like a debate's reply: a rate limit or a 5xx is retried
    after its back-off, an open circuit refuses it at once, and fallback models are tried."""
    what = f"draft {draft_id}"
    prompt = await when_available(what, _stored_prompt, db, draft_id)
    reply: dict[str, Any] | None = None
    reason: str | None = None
    trace = CallTrace()
    try:
        reply = (await calls.complete_json(model, prompt, trace)).data
    except LLMFailure as failure:
        reason = failure.reason
    answered_by = trace.model if reply is not None else None
    await when_available(
        what,
        _fill,
        db,
        draft_id,
        reply,
        catalog,
        keep_template,
        reason,
        answered_by,
        trace,
    )


def _stored_prompt(db: Database, draft_id: int) -> list[dict[str, Any]]:
    with db.transaction(write=False) as session:
        return list(get_draft(session, draft_id).prompt)


def _fill(
    db: Database,
    draft_id: int,
    reply: dict[str, Any] | None,
    catalog: TemplateCatalog,
    keep_template: bool,
    failure: str | None,
    answered_by: str | None = None,
    trace: CallTrace | None = None,
) -> None:
    trace = trace or CallTrace()
    with db.transaction() as session:
        draft = get_draft(session, draft_id, for_update=True)
        if draft.status != DraftStatus.PENDING:
            if draft.note != INTERRUPTED:
                # This process's own fill, made again by ``when_available`` because its
                # commit's answer was lost to an outage: already stored.
                return
            _bill(draft, trace)  # the tokens were spent all the same
            # Another server process gave the draft up, taking this one for gone, and its
            # people may have edited it since: the model's proposals come too late to apply.
            log.warning(
                "draft %d was marked %s by another server process while this one waited for"
                " the model; the model's reply was not applied",
                draft_id,
                draft.status,
            )
            return
        try:
            parsed = DraftReply.model_validate(reply) if reply is not None else None
        except ValidationError:
            parsed, failure = None, "its reply did not have the fields asked for"
        if parsed is None:
            draft.note = MODEL_FAILED.format(reason=failure, template=draft.template)
        else:
            _apply_reply(session, draft, parsed, catalog, keep_template)
            # A fallback model may have answered for the one the draft was made for.
            draft.model = answered_by or draft.model
        _bill(draft, trace)
        draft.status = DraftStatus.READY
        draft.updated_at = utcnow()


def _bill(draft: Draft, trace: CallTrace) -> None:
    """Every attempt behind the answer and their billed tokens, the failed ones' too."""
    draft.attempts = list(trace.attempts)
    draft.tokens_in = trace.usage.tokens_in
    draft.tokens_out = trace.usage.tokens_out
    draft.cost = trace.usage.cost


def _apply_reply(
    session: Session, draft: Draft, reply: DraftReply, catalog: TemplateCatalog, keep: bool
) -> None:
    notes = []
    draft.name = _name_from(reply.name) if reply.name.strip() else draft.name
    problem = reply.problem.strip()
    if len(problem) > MAX_TEXT:
        # As it came, the project made from the draft would refuse it (a 500, no project).
        problem = problem[:MAX_TEXT]
        notes.append(f"The model's problem statement was cut to {MAX_TEXT} characters.")
    draft.problem = problem or draft.problem
    if not keep and reply.template and reply.template != draft.template:
        if templates.find_template(session, catalog=catalog, key=reply.template):
            draft.template = reply.template
        else:
            notes.append(f"The model suggested an unknown template {reply.template!r}.")
    proposed = [_proposed(raw) for raw in reply.proposals[:MAX_PROPOSALS]]
    kept = [p for p in proposed if p is not None]
    if len(kept) < len(proposed):
        notes.append(f"{len(proposed) - len(kept)} malformed proposal(s) were left out.")
    for position, item in enumerate(kept):
        session.add(
            DraftProposal(
                draft_id=draft.id,
                position=position,
                category=item.category,
                title=item.title,
                question=item.question,
                status=ProposalStatus.PENDING,
            )
        )
    draft.note = " ".join(notes)


def _proposed(raw: object) -> _Proposed | None:
    try:
        return _Proposed.model_validate(raw)
    except ValidationError:
        return None


# Drafts waiting for the model's proposals.
WAITING = Draft.status == DraftStatus.PENDING


def mark_interrupted(session: Session, *, runners: Collection[int] | None = None) -> int:
    """Drafts left waiting by a server that is gone will never get their answer: at start-up
    all of them, while serving those of ``runners``."""
    result = session.execute(
        update(Draft)
        .where(left_behind(session, Draft.runner, WAITING, only=runners))
        .values(status=DraftStatus.READY, note=INTERRUPTED, updated_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _editable(session: Session, draft_id: int) -> Draft:
    draft = get_draft(session, draft_id)
    if draft.status == DraftStatus.PENDING:
        raise Conflict(f"Draft {draft_id} is still waiting for the model; try again shortly")
    if draft.project_id is not None:
        raise Conflict(f"Draft {draft_id} already became project {draft.project_id}")
    return draft


def update_draft(
    session: Session, *, draft_id: int, data: DraftUpdate, actor: User, catalog: TemplateCatalog
) -> DraftView:
    """Edit the name or problem statement, or pick another template."""
    draft = _editable(session, draft_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "template" in changes:
        templates.require_template(session, catalog=catalog, key=changes["template"])
    for name, value in changes.items():
        setattr(draft, name, value)
    draft.updated_at = utcnow()
    _audit(session, actor, "draft.updated", draft, changes)
    return view_draft(session, draft_id)


def add_proposal(
    session: Session, *, draft_id: int, data: ProposalCreate, actor: User
) -> DraftView:
    """A focus item the team adds itself; it is accepted as written."""
    draft = _editable(session, draft_id)
    position = len(_proposals(session, [draft.id]))
    session.add(
        DraftProposal(
            draft_id=draft.id,
            position=position,
            status=ProposalStatus.ACCEPTED,
            **data.model_dump(),
        )
    )
    session.flush()
    _audit(session, actor, "draft.proposal_added", draft, data.model_dump(mode="json"))
    return view_draft(session, draft_id)


def update_proposal(
    session: Session, *, draft_id: int, proposal_id: int, data: ProposalUpdate, actor: User
) -> DraftView:
    """Accept, drop or edit one proposal."""
    draft = _editable(session, draft_id)
    proposal = session.get(DraftProposal, proposal_id)
    if proposal is None or proposal.draft_id != draft.id:
        raise NotFound(f"Draft {draft_id} has no proposal {proposal_id}")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(proposal, name, value)
    draft.updated_at = utcnow()
    _audit(session, actor, "draft.proposal_updated", draft, {"proposal_id": proposal_id, **changes})
    return view_draft(session, draft_id)


def create_project(
    session: Session,
    *,
    draft_id: int,
    data: DraftProjectCreate,
    actor: User,
    catalog: TemplateCatalog,
) -> Project:
    """The project: the draft's template items, then only the accepted proposals."""
    draft = _editable(session, draft_id)
    accepted = [
        _usable(
            draft,
            f"proposals[{p.id}].",
            ChecklistItemCreate,
            {"category": p.category, "title": p.title, "question": p.question},
        )
        for p in _proposals(session, [draft.id])
        if p.status == ProposalStatus.ACCEPTED
    ]
    fields = {"name": draft.name, "problem": draft.problem, "template": draft.template}
    project_data = _usable(draft, "", ProjectCreate, {**fields, **data.model_dump()})
    project = projects.create_project(
        session, data=project_data, actor=actor, catalog=catalog, extra_items=accepted
    )
    _claim(session, draft, project)
    _audit(session, actor, "draft.project_created", draft, {"project_id": project.id})
    return project


def _usable(draft: Draft, prefix: str, schema: type[Usable], values: dict[str, Any]) -> Usable:
    """``values`` as ``schema`` takes them. A draft's text is checked as it is written, but a
    backup can hold what a project cannot (an empty name, a problem past 100,000
    characters): that is a conflict naming what to edit, where it was a 500."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = prefix + ".".join(str(part) for part in error["loc"])
        raise Conflict(
            f"Draft {draft.id} cannot become a project until it is edited: {where}: {error['msg']}",
            field=where,
        ) from exc


def _claim(session: Session, draft: Draft, project: Project) -> None:
    """Only one project per draft, even when two people press the button at once."""
    claimed = session.execute(
        update(Draft)
        .where(Draft.id == draft.id, Draft.project_id.is_(None))
        .values(project_id=project.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise Conflict(f"Draft {draft.id} already became a project")
    session.refresh(draft)
