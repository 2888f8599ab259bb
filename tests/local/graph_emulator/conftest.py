"""Fixtures: a running emulator with one mailbox, the real msgraph-sdk client pointed at it, and
a webhook receiver for subscription tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from local.azurite import free_port
from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator

TAG_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name CoconutId"


@pytest.fixture
def emulator() -> Iterator[GraphEmulator]:
    with GraphEmulator() as running:
        yield running


@pytest.fixture
def jane(emulator: GraphEmulator) -> User:
    # The UPN differs from the primary mail, as it often does in real tenants.
    return emulator.add_user(
        "jane.doe@bank.onmicrosoft.com",
        "Jane.Doe@bank.example",
        "Jane Doe",
        "W. Europe Standard Time",
    )


@pytest.fixture
async def graph(emulator: GraphEmulator) -> AsyncIterator[GraphServiceClient]:
    """The SDK with its default middleware. Its connections are closed after the test through
    the transport underneath: the SDK's own transport does not pass `aclose` on."""
    connections = httpx.AsyncHTTPTransport()
    client = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=connections)
    )
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=client)
    adapter.base_url = emulator.base_url
    yield GraphServiceClient(request_adapter=adapter)
    await client.aclose()
    await connections.aclose()


@pytest.fixture
async def http(emulator: GraphEmulator) -> Any:
    async with httpx.AsyncClient(base_url=emulator.base_url, timeout=10) as client:
        yield client


def event_body(subject: str = "Mortgage advice", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": subject,
        "start": {"dateTime": "2030-03-11T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-03-11T10:00:00", "timeZone": "W. Europe Standard Time"},
        "showAs": "busy",
    }
    body.update(extra)
    return body


@dataclass
class WebhookReceiver:
    """A local endpoint that answers Graph's validation handshake and records notifications."""

    port: int = field(default_factory=free_port)
    echo_token: bool = True
    validation_status: int = 200
    validation_delay: float = 0.0  # seconds before answering a validation request
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    validations: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def _endpoint(self, request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            with self._lock:
                self.validations.append(request.url.path)
            if self.validation_delay:
                await asyncio.sleep(self.validation_delay)
            if not self.echo_token:
                return PlainTextResponse("nope")
            return PlainTextResponse(token, status_code=self.validation_status)
        payload = await request.json()
        with self._lock:
            self.received.append((request.url.path, payload))
        return Response(status_code=202)

    def start(self) -> WebhookReceiver:
        app = Starlette(routes=[Route("/{name}", self._endpoint, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        server = self._server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait_for(
        self, predicate: Callable[[list[tuple[str, dict[str, Any]]]], bool], timeout: float = 10
    ) -> list[tuple[str, dict[str, Any]]]:
        """The notifications received, once `predicate` holds for them (or the timeout ends)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                snapshot = list(self.received)
            if predicate(snapshot) or time.monotonic() > deadline:
                return snapshot
            time.sleep(0.02)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
