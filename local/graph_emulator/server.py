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
from local.graph_emulator.faults import FaultRule
from local.graph_emulator.folders import Folder
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
        *,
        has_mailbox: bool = True,
        mailbox_error: str = "MailboxNotEnabledForRESTAPI",
        access_denied: bool = False,
    ) -> User:
        """A directory user; `time_zone` may be any name Graph reports (Windows, IANA,
        "Customized Time Zone")."""
        return self.state.add_user(
            user_principal_name,
            mail,
            display_name,
            time_zone,
            user_id=user_id,
            has_mailbox=has_mailbox,
            mailbox_error=mailbox_error,
            access_denied=access_denied,
        )

    def set_mailbox(
        self, user: str, enabled: bool, error: str = "MailboxNotEnabledForRESTAPI"
    ) -> User:
        """Make the user's mailbox reachable through Graph, or not: while disabled every mailbox
        endpoint answers 404 `error` (MailboxNotEnabledForRESTAPI or ResourceNotFound)."""
        return self.state.update_user(user, {"hasMailbox": enabled, "mailboxError": error})

    def set_access_denied(self, user: str, denied: bool) -> User:
        """Put the mailbox outside (or back inside) the app's RBAC scope: 403 ErrorAccessDenied."""
        return self.state.update_user(user, {"accessDenied": denied})

    # ----- mailbox contents -----

    def events(self, user: str, calendar: str | None = None) -> list[dict[str, Any]]:
        """Every stored item of the primary calendar in full, extended properties included;
        `calendar` names another calendar (id or name), "deletedItems", or "all"."""
        return self.state.full_events(self.state.user_or_raise(user).id, calendar)

    def deleted_items(self, user: str) -> list[dict[str, Any]]:
        return self.events(user, "deletedItems")

    def calendars(self, user: str) -> list[Folder]:
        with self.state.lock:
            return self.state.calendar(self.state.user_or_raise(user).id).folders.calendars()

    def add_calendar(self, user: str, name: str) -> Folder:
        return self.state.add_calendar(self.state.user_or_raise(user).id, name)

    def create_event_as_person(
        self, user: str, body: dict[str, Any], calendar: str | None = None
    ) -> StoredEvent:
        """What a person does in Outlook: no transactionId, no throttling; notifies and shows in
        delta like any change. `calendar` (id or name) puts it in another calendar."""
        self.app.graph.schema.validate("event", body)
        user_id = self.state.user_or_raise(user).id
        folder = None
        if calendar is not None:
            found = self.state.calendar(user_id).folders.find(calendar)
            if found is None or not found.is_calendar:
                raise KeyError(calendar)
            folder = found.id
        event, _ = self.state.create_event(user_id, body, folder)
        return event

    def update_event_as_person(self, user: str, event_id: str, body: dict[str, Any]) -> StoredEvent:
        self.app.graph.schema.validate("event", body, partial=True)
        return self.state.update_event(self.state.user_or_raise(user).id, event_id, body)

    def delete_event_as_person(self, user: str, event_id: str, permanent: bool = False) -> None:
        """Outlook's Delete: to Deleted Items (the id keeps resolving under `/events/{id}`);
        `permanent` is Shift+Delete: gone for good."""
        user_id = self.state.user_or_raise(user).id
        if permanent:
            self.state.permanently_delete_event(user_id, event_id)
        else:
            self.state.delete_event(user_id, event_id)

    def move_event_as_person(self, user: str, event_id: str, calendar: str) -> StoredEvent:
        """Drag an event (a whole series) to another calendar, by id or name ("deletedItems"
        too); for the primary calendar's views and delta it is then gone."""
        return self.state.move_event(self.state.user_or_raise(user).id, event_id, calendar)

    # ----- faults (see faults.py; each returns the rule's name for `clear_fault`) -----

    def add_fault(self, rule: dict[str, Any]) -> str:
        """One fault rule in the control API's JSON form, next to the ones already set."""
        return self.state.faults.add([FaultRule.from_json(rule)])[0]

    def clear_fault(self, name: str) -> None:
        if not self.state.faults.remove(name):
            raise KeyError(name)

    def clear_faults(self) -> None:
        self.state.faults.configure((), 0)

    def fail_event(
        self,
        event_id: str | None = None,
        *,
        property_value: str | None = None,
        property_id: str | None = None,
    ) -> str:
        """Every request about one event answers 500 ErrorInternalServerError until cleared: by
        id, or by an extended property's value (creates carrying it fail too)."""
        rule: dict[str, Any] = {"kind": "failingEvent", "eventId": event_id}
        if property_value is not None:
            rule["propertyValue"] = property_value
        if property_id is not None:
            rule["propertyId"] = property_id
        return self.add_fault(rule)

    def fail_mailbox(self, user: str, status: int | str = 503) -> str:
        """Every request to the mailbox answers `status` (500, 502, 503, 504), or with
        `status="drop"` closes the connection unanswered, until cleared."""
        if status == "drop":
            return self.add_fault({"kind": "dropConnection", "mailbox": user})
        return self.add_fault({"kind": "unavailable", "mailbox": user, "status": status})

    def expire_token(self, requests: int = 1) -> str:
        """The next `requests` requests answer 401 InvalidAuthenticationToken."""
        return self.add_fault({"kind": "invalidToken", "times": requests})

    def lose_responses(
        self,
        method: str,
        path_pattern: str,
        times: int = 1,
        lost_as: str = "503",
    ) -> str:
        """The next `times` matching requests are applied, then their answer is lost."""
        return self.add_fault(
            {
                "kind": "lostResponse",
                "methods": [method],
                "pathPattern": path_pattern,
                "times": times,
                "lostAs": lost_as,
            }
        )

    def wait_for_notifications(self, timeout: float = 10.0) -> bool:
        return self.state.outbox.wait_idle(timeout)


def load_seed(state: EmulatorState, seed: dict[str, Any] | Path) -> None:
    import json

    data = json.loads(seed.read_text()) if isinstance(seed, Path) else seed
    state.seed(data)
