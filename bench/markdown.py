"""Rendering a message's Markdown: text built to be slow against a reply as models write it.

The first thread page, or API read, that shows a message renders its Markdown on the one
interpreter the server has (later ones find it kept: app/markdown.py, ``RenderedByText``);
measured here is that first rendering. A message may hold 100,000 characters (a model's reply up
to DESIGNGATE_LLM_MAX_REPLY_CHARS), so what matters is how much slower than an ordinary reply
of the same length the worst text is. The baseline is such a reply (headings, emphasis, a list,
a link, code), rendered in the same run.
"""

import statistics
import time
from collections.abc import Callable

from app.markdown import sanitised_html

LENGTH = 100_000  # what a person's message may hold (the API's and the forms' limit)
# A model's reply as they come: headings, emphasis, lists, a link, code.
PROSE = (
    "## Design 2: an outbox\n\n"
    "The consumer writes each **order** and an *outbox* row in one transaction, then "
    "acknowledges the message.\n\n"
    "- Retries: three, with [backoff](https://example.com/backoff) and jitter.\n"
    "- A message that cannot be parsed goes to a `dead-letter` queue.\n\n"
    "```python\nwith session.begin():\n    session.add(order)\n```\n\n"
)


def _repeat(unit: str) -> str:
    return (unit * (LENGTH // len(unit) + 1))[:LENGTH]


HOSTILE: dict[str, str] = {
    'unclosed "["': _repeat("["),
    'unclosed "!["': _repeat("!["),
    '"[" opening each line': _repeat("[a\n"),
    'unclosed "[a]("': _repeat("[a]("),
    "emphasis markers": _repeat("*a"),
    "a table row of cells": _repeat("|a") + "\n" + _repeat("|-"),
    "lists indented one deeper each line": "".join("  " * i + "- x\n" for i in range(2_000)),
    '"<" and "&#"': _repeat("<&#"),
}


def _median_ms(render: Callable[[str], str], text: str, runs: int = 3) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        render(text)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def run() -> list[str]:
    """One line per case: its render time and its ratio to prose of the same length."""
    sanitised_html(PROSE)  # the parser is built on the first render
    prose_ms = _median_ms(sanitised_html, _repeat(PROSE))
    lines = [f"  {'a reply as models write them':38} {prose_ms:8.0f} ms  (baseline)"]
    worst = 0.0
    for name, text in HOSTILE.items():
        took = _median_ms(sanitised_html, text)
        worst = max(worst, took / prose_ms)
        lines.append(f"  {name:38} {took:8.0f} ms  = x{took / prose_ms:.1f} prose")
    lines.append(f"  the slowest text against prose: x{worst:.1f}")
    return lines
