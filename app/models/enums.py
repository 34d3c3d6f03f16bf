"""Closed vocabularies shared by models, schemas and services."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class Category(StrEnum):
    """The six failure-mode categories; the values are stable API keys."""

    DATA_OWNERSHIP = "data_ownership"
    DEGRADATION = "degradation"
    LOAD = "load"
    RESILIENCE = "resilience"
    MITIGATION = "mitigation"
    RECOVERY = "recovery"


class DecisionStatus(StrEnum):
    DECIDED = "decided"
    ACCEPTED_RISK = "accepted_risk"
    NOT_APPLICABLE = "not_applicable"


class GenerationStatus(StrEnum):
    PENDING = "pending"
    STREAMING = "streaming"
    COMPLETE = "complete"
    ERROR = "error"


class ThreadMode(StrEnum):
    BLIND = "blind"
    FAILURE_WALK = "failure_walk"
    CHALLENGE = "challenge"
    OPEN = "open"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    STREAMING = "streaming"
    COMPLETE = "complete"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class Vote(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"
    ABSTAIN = "abstain"


class ProposalStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DROPPED = "dropped"


class DraftStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
