"""A tiny webhook receiver for the sender's tests: answers scripted statuses, records requests."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.coconut_emulator import BackgroundServer

PATH = "/api/coconut/webhooks"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self._statuses = deque(statuses)
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.app = Starlette(routes=[Route(PATH, self.webhook, methods=["POST"])])

    async def webhook(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.received.append(Received(dict(request.headers), body))
            status = self._statuses.popleft() if self._statuses else 202
        return JSONResponse({"status": "accepted" if status == 202 else "no"}, status_code=status)


@contextmanager
def serving(receiver: Receiver) -> Iterator[str]:
    """The receiver on a free loopback port; yields its webhook URL."""
    server = BackgroundServer(receiver.app)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}{PATH}"
    finally:
        server.stop()
