from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, computed_field

from app.markdown import render_markdown, sanitised_html
from app.models.enums import MessageRole, MessageStatus, ThreadMode
from app.schemas.common import NO_NUL, Flag, Id, Read, RequiredText, Strict, Title

ModelName = Title


class ThreadCreate(Strict):
    """A debate; ``models`` defaults to DESIGNGATE_MODELS (or the one DESIGNGATE_MODEL)."""

    mode: ThreadMode
    checklist_item_id: Id | None = None
    models: list[ModelName] | None = Field(default=None, min_length=1, max_length=8)
    title: Annotated[
        str, StringConstraints(max_length=200, pattern=NO_NUL), AfterValidator(str.strip)
    ] = ""


class MessageCreate(Strict):
    content: RequiredText
    pushback: Flag = Field(
        default=False,
        description="Push back on the model's position; a neutral judge checks its answer.",
    )


class MessageRead(Read):
    id: int
    thread_id: int
    turn: int
    role: MessageRole
    content: str
    status: MessageStatus
    model: str | None
    requested_model: str | None
    author_id: int | None
    reply_to_id: int | None
    pushback: bool
    error: str | None
    error_kind: str | None
    flags: list[str]
    prompt: list[dict[str, Any]] = Field(description="The exact messages sent to the model.")
    judgement: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    first_token_ms: int | None
    latency_ms: int | None
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_html(self) -> str:
        """The content as sanitised HTML; the only form a page may show unescaped.

        A streaming reply's text is new at every read: rendered, but not kept, where it
        would push finished messages out of what is kept."""
        if self.status == MessageStatus.STREAMING:
            return sanitised_html(self.content)
        return render_markdown(self.content)


class ModelStats(BaseModel):
    """How one model behaved: replies, failures, flips under pushback, what it cost."""

    model: str
    replies: int = 0
    complete: int = 0
    errors: int = 0
    interrupted: int = 0
    judged: int = 0
    flips: int = 0
    capitulations: int = 0
    first_flip_turn: int | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None


class CallUsage(BaseModel):
    """Tokens and cost of one kind of model call, every attempt's, failed ones included."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None


class UsageTotals(BaseModel):
    """Tokens and cost of a project's model calls: replies and judge calls (which count
    against the token budget), and code generations and drafts (which do not)."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    judge_tokens_in: int = 0
    judge_tokens_out: int = 0
    judge_cost: float | None = None
    token_budget: int | None = None
    tokens_used: int = 0
    tokens_remaining: int | None = None
    generations: CallUsage = Field(
        default_factory=CallUsage,
        description="The project's code generations; not counted against the token budget.",
    )
    drafts: CallUsage = Field(
        default_factory=CallUsage,
        description="The draft the project was made from; not counted against the budget.",
    )


class ProjectModels(BaseModel):
    project_id: int
    models: list[ModelStats]
    usage: UsageTotals


class ThreadSummary(Read):
    id: int
    project_id: int
    checklist_item_id: int | None
    mode: ThreadMode
    models: list[str]
    title: str
    created_by_id: int | None
    created_at: datetime


class ThreadRead(ThreadSummary):
    design_visible: bool = Field(
        description="Whether prompts now include the architecture and data model "
        "(false until the project has a completed blind round, when blind_first is on)."
    )
    messages: list[MessageRead]
    stats: list[ModelStats]


class PostedMessage(BaseModel):
    """The stored user message and the replies now being written, one per model."""

    user_message: MessageRead
    replies: list[MessageRead]


def thread_read(
    thread: Any, *, design_visible: bool, messages: list[Any], stats: list[ModelStats]
) -> ThreadRead:
    """A thread with its messages, from the service's view of it."""
    summary = ThreadSummary.model_validate(thread)
    return ThreadRead(
        **summary.model_dump(),
        design_visible=design_visible,
        messages=[MessageRead.model_validate(m) for m in messages],
        stats=stats,
    )
