"""Route on the request path as sent, percent-encoding intact, and decode each segment once.

uvicorn hands Starlette a decoded `path`, so an external id containing "%2F" would split into two
segments and miss its route. Routing on `raw_path` keeps every encoded segment whole; handlers
then decode their path parameters with `decode_segment`.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from starlette.types import ASGIApp, Receive, Scope, Send

# The contract: path segments are percent-encoded, RFC 3986 unreserved characters stay as they are.
# So a well-behaved client sends nothing but unreserved characters and %XX escapes.
_ENCODED_SEGMENT = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})+")


class BadPathSegment(ValueError):
    """A path segment the client did not percent-encode as the contract requires."""


def decode_segment(raw: str) -> str:
    if _ENCODED_SEGMENT.fullmatch(raw) is None:
        raise BadPathSegment("path segment is not percent-encoded")
    try:
        return unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise BadPathSegment("path segment is not UTF-8 once decoded") from error


def encode_segment(value: str) -> str:
    """How a contract-following client writes one path segment."""
    return quote(value, safe="")


class RawPathRouting:
    """ASGI middleware: make `scope["path"]` the still-encoded request path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            path = raw.decode("latin-1") if raw else quote(scope["path"])
            scope = {**scope, "path": path}
        await self.app(scope, receive, send)
