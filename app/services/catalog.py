"""The built-in failure-mode checklist every new project starts with."""

from dataclasses import dataclass

from app.models.enums import Category


@dataclass(frozen=True)
class ItemSpec:
    category: Category
    title: str
    question: str


CATEGORY_LABELS: dict[Category, str] = {
    Category.DATA_OWNERSHIP: "Data ownership",
    Category.DEGRADATION: "Downstream degradation",
    Category.LOAD: "Load spikes",
    Category.RESILIENCE: "Retries and backoff",
    Category.MITIGATION: "Mitigation",
    Category.RECOVERY: "Recovery",
}

DEFAULT_CHECKLIST: tuple[ItemSpec, ...] = (
    ItemSpec(
        Category.DATA_OWNERSHIP,
        "Who owns each piece of data",
        "For every piece of data this system reads or writes, which service is its single "
        "owner and source of truth, who may change it, and how do other parts learn it changed?",
    ),
    ItemSpec(
        Category.DEGRADATION,
        "A downstream drops off the network",
        "When each dependency (database, broker, external API) becomes unreachable or slow, "
        "what does this system do: block, queue, serve stale data or fail fast, and what "
        "do its callers see?",
    ),
    ItemSpec(
        Category.LOAD,
        "Traffic spikes",
        "What happens at ten times the normal load: which resource saturates first "
        "(connections, CPU, queue depth, memory), and how is excess load shed or absorbed?",
    ),
    ItemSpec(
        Category.RESILIENCE,
        "Retries and backoff",
        "Which operations are retried, how many times, with what backoff and jitter, and are "
        "they idempotent so that a retry cannot apply the same change twice?",
    ),
    ItemSpec(
        Category.MITIGATION,
        "What breaks and how we protect it",
        "Which failures are expected (bad input, poison messages, partial writes, timeouts), "
        "and what guards each one: validation, timeouts, circuit breakers, bulkheads, limits?",
    ),
    ItemSpec(
        Category.RECOVERY,
        "Coming back from failure",
        "After a crash or outage, how does the system return to a correct state: what is "
        "replayed or reconciled, what may be lost, and how would an operator know it recovered?",
    ),
)
