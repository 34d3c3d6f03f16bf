"""Reading a text/event-stream response into (event, data) pairs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def events(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each event's name and JSON data; keep-alive comments are skipped."""
    name, data = "message", []
    for line in lines:
        if line.startswith(":"):
            continue
        if line.startswith("event:"):
            name = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].strip())
        elif line == "" and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []
