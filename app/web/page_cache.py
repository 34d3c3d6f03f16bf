"""Rendered review pages, kept while nothing they show has changed.

A review page reads the checklist, every thread's replies and the generations, and renders
them: several milliseconds, against well under one for what it costs to check whether any
of that changed (``review.page_revisions``, which database triggers keep). So a page is
rendered once per revision of its project and per viewer, and served again until the
revision moves; the page without its debates section is kept the same way, by the count of
the changes outside that section (app/web/projects.py).

The viewer is part of the key because the page carries their name, role and form token:
one person's page is never served to another.
"""

from typing import NamedTuple

from app.kept import Kept


class PageKey(NamedTuple):
    project_id: int
    revision: int
    user_id: int
    user_name: str
    role: str
    csrf_token: str


# Rendered pages by key (``app/kept.py``): each of about 80 KB, a few megabytes at most.
RenderedPages = Kept[PageKey, str]
