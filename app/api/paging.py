"""The Link header (RFC 8288) that leads a client from one page of a list to the next."""

from typing import Any, Protocol, TypeVar

from fastapi import Request, Response

from app.services.paging import Page


class HasId(Protocol):
    @property
    def id(self) -> int: ...


Listed = TypeVar("Listed", bound=HasId)

# For a route's ``responses``: the OpenAPI document tells clients of the header.
NEXT_PAGE_LINK: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'When more follow: `<URL of the next page>; rel="next"`.',
                "schema": {"type": "string"},
            }
        }
    }
}


def link_next_page(request: Request, response: Response, page: Page[Listed], cursor: str) -> None:
    """When more rows follow ``page``, a Link header to the next page: this request's
    absolute URL with its ``cursor`` parameter set to the page's last id (its size kept)."""
    if page.more and page.rows:
        url = request.url.include_query_params(**{cursor: page.rows[-1].id})
        response.headers["Link"] = f'<{url}>; rel="next"'
