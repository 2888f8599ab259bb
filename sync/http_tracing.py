"""One client span per Graph or Coconut HTTP request, recorded at the transport.

The transport sits under every middleware (Graph's kiota pipeline, authentication), so it sees
the request as sent and the answer as received. What a span holds:

- method, host, status, and the URL without its query values: `$filter=mail eq '…'` names a staff
  member's e-mail address, so every query value is replaced, and so is any path segment that
  holds an address. Path ids (Graph user and event ids, Coconut user ids) stay: they are
  identifiers, not personal content, and they say which mailbox and event a call was for;
- for Graph, `client-request-id` (set here when the SDK did not) and Graph's `request-id`, the two
  ids Microsoft support asks for;
- the staff member the call was made for, when known.

Never a header value other than those two ids, never a body.
"""

from __future__ import annotations

import re
import uuid
from typing import Final, Literal
from urllib.parse import unquote

import httpx
from opentelemetry.trace import SpanKind, StatusCode

from sync.telemetry import STAFF_ID, count_throttled_answer, current_staff
from sync.tracing import service_span

Peer = Literal["graph", "coconut"]

# OpenTelemetry's HTTP attribute names; the Application Insights exporter turns them into the
# dependency's type, target, data (the URL) and result code.
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_FULL: Final = "url.full"
URL_SCHEME: Final = "url.scheme"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
# The service's own: customDimensions of the dependency.
PEER: Final = "peer"
GRAPH_CLIENT_REQUEST_ID: Final = "graph.client_request_id"
GRAPH_REQUEST_ID: Final = "graph.request_id"

CLIENT_REQUEST_ID_HEADER: Final = "client-request-id"
REQUEST_ID_HEADER: Final = "request-id"
REDACTED: Final = "redacted"
# Graph answers that mean "slow down": counted as graph_throttled.
THROTTLING_STATUSES: Final = frozenset({429, 503})

# Path segments kept in a span's name: words such as `users`, `calendarView`, `delta()`,
# `$batch`, `v1.0`. Anything else (ids, addresses) becomes `{id}`, so names group calls of one
# kind.
_WORD = re.compile(r"^(?:[A-Za-z$][A-Za-z.$-]*(?:\(\))?|v\d+(?:\.\d+)?)$")


def route(path: str) -> str:
    """`/v1.0/users/4f1c…/events/AAMk…` → `/v1.0/users/{id}/events/{id}`."""
    return "/".join(s if not s or _WORD.match(s) else "{id}" for s in path.split("/"))


def _raw_path(url: httpx.URL) -> str:
    # As sent: an id holding an encoded "/" stays one segment.
    return url.raw_path.decode("ascii", "replace").partition("?")[0]


def sanitized_url(url: httpx.URL) -> str:
    """The URL with every query value, and every path segment holding an address, replaced."""
    path = "/".join(REDACTED if "@" in unquote(s) else s for s in _raw_path(url).split("/"))
    port = f":{url.port}" if url.port is not None else ""
    query = "&".join(f"{name}={REDACTED}" for name in url.params)
    return f"{url.scheme}://{url.host}{port}{path}" + (f"?{query}" if query else "")


class TracedTransport(httpx.AsyncBaseTransport):
    """Wraps the transport that sends the requests; one span per request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, peer: Peer) -> None:
        self._inner = inner
        self._peer = peer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        graph = self._peer == "graph"
        if graph and CLIENT_REQUEST_ID_HEADER not in request.headers:
            request.headers[CLIENT_REQUEST_ID_HEADER] = str(uuid.uuid4())
        attributes: dict[str, str | int] = {
            HTTP_REQUEST_METHOD: request.method,
            URL_FULL: sanitized_url(request.url),
            # The dependency's target: the host, and the port when not the scheme's default.
            URL_SCHEME: request.url.scheme,
            SERVER_ADDRESS: request.url.host,
            SERVER_PORT: request.url.port or (443 if request.url.scheme == "https" else 80),
            PEER: self._peer,
        }
        if staff := current_staff():
            attributes[STAFF_ID] = staff
        if graph:
            attributes[GRAPH_CLIENT_REQUEST_ID] = request.headers[CLIENT_REQUEST_ID_HEADER]
        name = f"{request.method} {route(_raw_path(request.url))}"
        with service_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
            response = await self._inner.handle_async_request(request)
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, response.status_code)
            if graph and (request_id := response.headers.get(REQUEST_ID_HEADER)):
                span.set_attribute(GRAPH_REQUEST_ID, request_id)
            if response.status_code >= 400:
                span.set_status(StatusCode.ERROR)
        if graph and response.status_code in THROTTLING_STATUSES:
            count_throttled_answer(response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
