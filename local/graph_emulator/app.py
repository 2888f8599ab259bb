"""The ASGI application: Graph under `/v1.0`, the control API under `/_emulator`."""

from __future__ import annotations

import contextvars
import json
import logging

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from local.graph_emulator import batch
from local.graph_emulator.control import control_routes
from local.graph_emulator.errors import error_body
from local.graph_emulator.graph_api import GraphApi, GraphRequest, GraphResponse, parse_query
from local.graph_emulator.schema import GraphSchema
from local.graph_emulator.state import EmulatorState

log = logging.getLogger(__name__)
GRAPH_PREFIX = "/v1.0"
# Set while answering a request whose connection a fault drops on purpose.
_DROPPING: contextvars.ContextVar[bool] = contextvars.ContextVar("dropping", default=False)
_UNFINISHED = "ASGI callable returned without completing response"


class _DroppedOnPurpose(logging.Filter):
    """uvicorn reports an answer left unfinished as an application error; for a connection a
    fault rule drops, that is the point (counted as "dropped" in `/counters`), not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_DROPPING.get() and record.getMessage().startswith(_UNFINISHED))


def _quiet_dropped_connections() -> None:
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DroppedOnPurpose) for f in server_log.filters):
        server_log.addFilter(_DroppedOnPurpose())


class EmulatorApp:
    """Routes `/v1.0/…` to the Graph pipeline and everything else to the control API."""

    def __init__(self, state: EmulatorState, schema: GraphSchema | None = None) -> None:
        schema = schema or GraphSchema.load()
        self.state = state
        self.graph = GraphApi(state, schema)
        batch.install(self.graph)
        self.control = Starlette(routes=control_routes(state, schema))
        _quiet_dropped_connections()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (
            path == GRAPH_PREFIX or path.startswith(GRAPH_PREFIX + "/")
        ):
            await self._graph(scope, receive, send)
        else:
            await self.control(scope, receive, send)

    async def _graph(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host") or "127.0.0.1"
        request = GraphRequest(
            method=scope["method"].upper(),
            path=scope["path"][len(GRAPH_PREFIX) :] or "/",
            query_items=parse_query(scope.get("query_string", b"").decode("latin-1")),
            headers=headers,
            body=body,
            base_url=f"{scope.get('scheme', 'http')}://{host}{GRAPH_PREFIX}",
        )
        try:
            response = await self.graph.handle(request)
        except Exception:
            log.exception("unexpected failure in the Graph emulator")
            response = GraphResponse(500, error_body("InternalServerError", "Unexpected failure."))
        await _send(response, send)


async def _send(response: GraphResponse, send: Send) -> None:
    payload = b"" if response.body is None else json.dumps(response.body).encode()
    headers = dict(response.headers)
    if response.body is not None:
        headers.setdefault("Content-Type", "application/json")
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    # A dropped response must promise a body, or the client would see a complete answer.
    length = max(len(payload), 1) if response.drop_connection else len(payload)
    raw_headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    if response.drop_connection:
        # A lost response: the headers went out, the body never will; the server closes the
        # connection and the client sees it end mid-response. The server logs this from the
        # same task, where the flag is still set.
        _DROPPING.set(True)
        return
    await send({"type": "http.response.body", "body": payload})
