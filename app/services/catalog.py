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
