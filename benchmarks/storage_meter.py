"""Counts the storage requests the Functions host makes: a loopback pass-through in front of
Azurite's queue and table endpoints. Shared Key signatures do not cover the Host header, so the
requests pass unchanged."""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from local.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from local.coconut_emulator import BackgroundServer

# Hop-by-hop or re-computed headers that must not be copied across.
_SKIPPED = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


class _PassThrough:
    def __init__(self, service: str, target: str, counts: Counter[str], lock: threading.Lock):
        self._service = service
        self._target = target
        self._counts = counts
        self._lock = lock
        # One client for every request, made in the server's own event loop on the first one:
        # a client per request costs a TLS context and a connection each time, which made
        # the pass-through itself the slowest part of a metered run.
        self._client: httpx.AsyncClient | None = None

    def _forwarder(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=60, limits=httpx.Limits(max_connections=None, max_keepalive_connections=64)
            )
        return self._client

    def app(self) -> ASGIApp:
        async def forward(scope: dict[str, object], receive: object, send: object) -> None:
            if scope["type"] != "http":
                return
            request = Request(scope, receive)  # type: ignore[arg-type]
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIPPED}
            answer = await self._forwarder().request(
                request.method,
                f"{self._target}{request.url.path}",
                params=request.url.query or None,
                headers=headers,
                content=await request.body(),
            )
            with self._lock:
                self._counts[f"{self._service} {request.method}"] += 1
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _SKIPPED}
            response = Response(answer.content, status_code=answer.status_code, headers=kept)
            await response(scope, receive, send)  # type: ignore[arg-type]

        return forward  # type: ignore[return-value]


class StorageMeter:
    """`connection_string` goes to the host; `snapshot()` is the request count so far."""

    def __init__(self, azurite: Azurite) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._servers = {
            service: BackgroundServer(
                _PassThrough(service, f"http://127.0.0.1:{port}", self._counts, self._lock).app()
            )
            for service, port in (("queue", azurite.queue_port), ("table", azurite.table_port))
        }

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"QueueEndpoint={base}:{self._servers['queue'].port}/{ACCOUNT_NAME};"
            f"TableEndpoint={base}:{self._servers['table'].port}/{ACCOUNT_NAME};"
        )

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    def start(self) -> StorageMeter:
        for server in self._servers.values():
            server.start()
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()

    def __enter__(self) -> StorageMeter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
