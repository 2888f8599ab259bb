"""JSON:API pieces the emulated Coconut API shares: error documents and page-number paging."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

MAX_PAGE_SIZE = 100
# Deliberately not 100: a client that forgets `page[size]` still gets a consistent result if it
# follows `total_pages`, and one that assumes a single page of 100 finds out.
DEFAULT_PAGE_SIZE = 25


@dataclass(frozen=True)
class Problem:
    """One entry of a JSON:API `errors` list; never carries the offending value itself."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None


def error_response(
    status: int, problems: Sequence[Problem] = (), headers: Mapping[str, str] | None = None
) -> JSONResponse:
    title = HTTPStatus(status).phrase
    errors: list[dict[str, Any]] = []
    for problem in problems or (Problem(title),):
        error: dict[str, Any] = {"status": str(status), "title": title, "detail": problem.detail}
        if problem.pointer is not None:
            error["source"] = {"pointer": problem.pointer}
        elif problem.parameter is not None:
            error["source"] = {"parameter": problem.parameter}
        errors.append(error)
    return JSONResponse({"errors": errors}, status_code=status, headers=dict(headers or {}))


@dataclass(frozen=True)
class PageRequest:
    number: int
    size: int


class BadPageParameter(ValueError):
    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = Problem(detail, parameter=parameter)


def page_request(query: Mapping[str, str]) -> PageRequest:
    """Read `page[number]` (from 1) and `page[size]` (1..100) from the query string."""
    number = _positive_int(query, "page[number]", default=1)
    size = _positive_int(query, "page[size]", default=DEFAULT_PAGE_SIZE)
    if size > MAX_PAGE_SIZE:
        raise BadPageParameter("page[size]", f"page[size] must be at most {MAX_PAGE_SIZE}")
    return PageRequest(number, size)


def _positive_int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise BadPageParameter(name, f"{name} must be a positive integer")
    return int(raw)


def page_document(items: Sequence[Mapping[str, Any]], page: PageRequest) -> dict[str, Any]:
    """The page's `data` plus `meta.pagination`; a page past the end is empty, not an error."""
    total_pages = max(1, math.ceil(len(items) / page.size))
    start = (page.number - 1) * page.size
    return {
        "data": list(items[start : start + page.size]),
        "meta": {"pagination": {"current_page": page.number, "total_pages": total_pages}},
    }
