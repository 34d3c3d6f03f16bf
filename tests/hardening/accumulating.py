"""Hypothesis settings for fuzzers whose accepted examples stay in the database."""

from hypothesis import HealthCheck, Phase, settings


def accumulating(examples: int) -> settings:
    """``examples`` examples against one app and database, not shrunk.

    Every accepted example stays (an import's rows, what a form wrote), so one that stores
    what breaks a later read fails every later example too, and a shrunk example would name
    one of those instead of the one that stored it. The first failing example is reported as
    it was drawn.
    """
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
