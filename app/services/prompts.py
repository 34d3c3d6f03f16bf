"""Renders the prompt files in app/prompts; no prompt text lives in code."""

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Prompts are plain text for a model, not HTML, so nothing is escaped.
    return Environment(  # noqa: S701
        loader=FileSystemLoader(PROMPT_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
    )


def template(name: str) -> Template:
    return _environment().get_template(name)


def render(name: str, **context: Any) -> str:
    return template(name).render(**context).strip()


def chat(name: str, **context: Any) -> list[dict[str, Any]]:
    """A system and a user message from ``NAME.system.md`` and ``NAME.user.md``."""
    return [
        {"role": "system", "content": render(f"{name}.system.md", **context)},
        {"role": "user", "content": render(f"{name}.user.md", **context)},
    ]
