"""Kept review pages: one rendering per page however many ask at once, and a bounded size."""

import threading
import time

import pytest

from app.web.page_cache import PageKey, RenderedPages


def key(revision: int = 1, user_id: int = 1) -> PageKey:
    return PageKey(7, revision, user_id, "Ann", "member", "token")


def test_requests_for_a_page_being_rendered_wait_for_that_rendering() -> None:
    pages = RenderedPages()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def render() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "<html>page</html>"

    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(pages.get_or_render(key(), render)))
    first.start()
    assert started.wait(5)
    others = [
        threading.Thread(target=lambda: results.append(pages.get_or_render(key(), render)))
        for _ in range(4)
    ]
    for thread in others:
        thread.start()
    time.sleep(0.2)  # let them reach the page while it is still being rendered
    release.set()
    for thread in (first, *others):
        thread.join(5)
    assert results == ["<html>page</html>"] * 5
    assert len(calls) == 1


def test_a_failed_rendering_is_not_kept_and_the_next_request_renders_again() -> None:
    pages = RenderedPages()

    def broken() -> str:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        pages.get_or_render(key(), broken)
    assert len(pages) == 0
    assert pages.get_or_render(key(), lambda: "fresh") == "fresh"


def test_a_new_revision_is_a_new_page() -> None:
    pages = RenderedPages()
    assert pages.get_or_render(key(revision=1), lambda: "one") == "one"
    assert pages.get_or_render(key(revision=1), lambda: "not rendered") == "one"
    assert pages.get_or_render(key(revision=2), lambda: "two") == "two"


def test_the_least_recently_used_page_goes_first_once_full() -> None:
    pages = RenderedPages(capacity=2)
    pages.get_or_render(key(user_id=1), lambda: "1")
    pages.get_or_render(key(user_id=2), lambda: "2")
    pages.get_or_render(key(user_id=1), lambda: "not rendered")  # 1 is used again
    pages.get_or_render(key(user_id=3), lambda: "3")  # 2 goes
    assert len(pages) == 2
    assert pages.get_or_render(key(user_id=1), lambda: "again") == "1"
    assert pages.get_or_render(key(user_id=2), lambda: "rendered again") == "rendered again"
