"""The six failure-mode categories: their labels and what each one asks about.

The items a new project starts with come from checklist templates (app/services/templates.py);
``generic-service`` is the default.
"""

from app.models.enums import Category

CATEGORY_LABELS: dict[Category, str] = {
    Category.DATA_OWNERSHIP: "Data ownership",
    Category.DEGRADATION: "Downstream degradation",
    Category.LOAD: "Load spikes",
    Category.RESILIENCE: "Retries and backoff",
    Category.MITIGATION: "Mitigation",
    Category.RECOVERY: "Recovery",
}

CATEGORY_CONCERNS: dict[Category, str] = {
    Category.DATA_OWNERSHIP: "Who owns each piece of data, and who may change it.",
    Category.DEGRADATION: "What happens when a downstream drops off the network or slows down.",
    Category.LOAD: "What happens when traffic spikes.",
    Category.RESILIENCE: "Which operations are retried, with what backoff, and safely.",
    Category.MITIGATION: "What breaks, and how the system is protected from it.",
    Category.RECOVERY: "How the system comes back to a correct state after a failure.",
}

# What a test must do to prove an item's decision is implemented, when its template says nothing.
CATEGORY_TESTS: dict[Category, str] = {
    Category.DATA_OWNERSHIP: (
        "Write each piece of data through its owner and show that any other writer is refused "
        "or goes through the owner, and that readers see the change."
    ),
    Category.DEGRADATION: (
        "Make the dependency unreachable or slow (stop it, or point at a closed port) and assert "
        "the decided behaviour within the timeout; restore it and assert the system carries on."
    ),
    Category.LOAD: (
        "Drive the system well above its normal rate and assert the decided limit holds: excess "
        "work is shed or queued as decided and nothing else falls over."
    ),
    Category.RESILIENCE: (
        "Make the operation fail a set number of times; count the attempts and their spacing and "
        "assert that a retried change is applied exactly once."
    ),
    Category.MITIGATION: (
        "Feed in the failure this item names and assert its guard catches it while the rest of "
        "the system keeps working."
    ),
    Category.RECOVERY: (
        "Kill the process mid-work, restart it and assert the state is correct again, as decided, "
        "with nothing lost or applied twice beyond what the decision accepts."
    ),
}
