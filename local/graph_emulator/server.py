"""An in-process emulator for tests and the demo: uvicorn on a background thread."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from local.graph_emulator.app import EmulatorApp
from local.graph_emulator.model import StoredEvent, User
from local.graph_emulator.state import EmulatorState
from local.graph_emulator.throttling import ThrottleLimits


def _free_port() -> int:
    from local.azurite import free_port

    return free_port()


class GraphEmulator:
    """`GraphEmulator().start()`; `.base_url` is what the SDK's adapter takes; `.state` is the
    emulator's memory, for seeding and inspecting without HTTP."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        limits: ThrottleLimits | None = None,
        seed: dict[str, Any] | Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or _free_port()
        self.state = EmulatorState(limits)
        self.app = EmulatorApp(self.state)
        self._seed = seed
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The Graph root, e.g. `http://127.0.0.1:8081/v1.0`."""
        return f"{self.root_url}/v1.0"

    @property
    def control_url(self) -> str:
        return f"{self.root_url}/_emulator"

    def start(self, timeout: float = 10.0) -> GraphEmulator:
        if self._seed is not None:
            load_seed(self.state, self._seed)
        self.state.outbox.start()
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve()), name="graph-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the Graph emulator did not start on port {self.port}")
            time.sleep(0.02)
        return self

    async def _serve(self) -> None:
        assert self._server is not None
        await self._server.serve()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.state.outbox.stop()
        self._server = None
        self._thread = None

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- direct accessors (no HTTP, no throttling) -----

    def add_user(
        self,
        user_principal_name: str,
        mail: str | None = None,
        display_name: str = "",
        time_zone: str = "UTC",
        user_id: str | None = None,
    ) -> User:
        return self.state.add_user(
            user_principal_name, mail, display_name, time_zone, user_id=user_id
        )

    def events(self, user: str) -> list[dict[str, Any]]:
        """Every stored item of the mailbox in full, extended properties included."""
        return self.state.full_events(self.state.user_or_raise(user).id)

    def create_event_as_person(self, user: str, body: dict[str, Any]) -> StoredEvent:
        """What a person does in Outlook: no transactionId, no throttling; notifies and shows in
        delta like any change."""
        self.app.graph.schema.validate("event", body)
        event, _ = self.state.create_event(self.state.user_or_raise(user).id, body)
        return event

    def update_event_as_person(self, user: str, event_id: str, body: dict[str, Any]) -> StoredEvent:
        self.app.graph.schema.validate("event", body, partial=True)
        return self.state.update_event(self.state.user_or_raise(user).id, event_id, body)

    def delete_event_as_person(self, user: str, event_id: str) -> None:
        self.state.delete_event(self.state.user_or_raise(user).id, event_id)

    def wait_for_notifications(self, timeout: float = 10.0) -> bool:
        return self.state.outbox.wait_idle(timeout)


def load_seed(state: EmulatorState, seed: dict[str, Any] | Path) -> None:
    import json

    data = json.loads(seed.read_text()) if isinstance(seed, Path) else seed
    state.seed(data)
