"""Run the emulator under uvicorn on loopback, in a background thread, for tests and the demo."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from local.azurite import free_port
from local.coconut_emulator.app import DEFAULT_BASE_PATH, build_app, normalise_base_path
from local.coconut_emulator.changes import (
    AbsenceDraft,
    AbsenceUpdate,
    AppointmentDraft,
    AppointmentUpdate,
    SilentChanges,
)
from local.coconut_emulator.faults import FaultInjector, FaultPlan
from local.coconut_emulator.record import CoconutRecord
from local.coconut_emulator.state import CoconutState, RequestKey, StaffUser
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.payloads import Appointment, Envelope, Unavailability

DEFAULT_API_KEY = "coconut-local-key"  # a fixed key for a loopback emulator


class BackgroundServer:
    """Any ASGI app under uvicorn on 127.0.0.1, started and stopped from the calling thread."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} did not start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server on port {self.port} did not start in {timeout} s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None


class CoconutEmulator:
    """The Coconut API emulator with direct access to its state.

    >>> with CoconutEmulator(api_key="k") as coconut:
    ...     coconut.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    ...     # point the service's COCONUT_API_BASE_URL at coconut.base_url
    """

    def __init__(
        self,
        port: int | None = None,
        api_key: str = DEFAULT_API_KEY,
        base_path: str = DEFAULT_BASE_PATH,
        faults: FaultPlan | None = None,
        users: Iterable[StaffUser] = (),
    ) -> None:
        self.api_key = api_key
        self.base_path = normalise_base_path(base_path)
        self.state = CoconutState()
        self.faults = FaultInjector(faults)
        self.state.replace_users(users)
        self.changes = SilentChanges(self.state)
        self.app = build_app(self.state, self.faults, api_key, self.base_path, self.changes)
        self._server = BackgroundServer(self.app, port)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        """What the service's `COCONUT_API_BASE_URL` should be (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_emulator"

    def start(self) -> CoconutEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> CoconutEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- direct state access (same effect as the control API) -------------------------------

    def add_user(
        self,
        user_id: str,
        email: str,
        first_name: str,
        last_name: str,
        calendar_sync: bool = True,
    ) -> StaffUser:
        user = StaffUser(
            id=user_id,
            email=email,
            first_name=first_name,
            last_name=last_name,
            calendar_sync=calendar_sync,
        )
        self.state.add_user(user)
        return user

    def set_users(self, users: Iterable[StaffUser]) -> None:
        self.state.replace_users(users)

    def users(self) -> list[StaffUser]:
        return self.state.users()

    def set_calendar_sync(self, user_id: str, enabled: bool) -> StaffUser:
        """Turn a user's calendar sync on or off; the roster shows it at once."""
        return self.state.set_calendar_sync(user_id, enabled)

    def external_events(self, user_id: str) -> dict[str, dict[str, Any]]:
        """External id -> the `data` Coconut holds for that user."""
        return self.state.external_events(user_id)

    def put_external_event(self, user_id: str, data: dict[str, Any]) -> None:
        """Place an external event as if something other than the service had written it."""
        self.state.put_external_event(user_id, str(data["id"]), data)

    # --- Coconut's record of appointments and absences ----------------------------------------

    @property
    def record(self) -> CoconutRecord:
        """What the listings serve. Bind a webhook model to it (`Coconut(record=...)`), or give it
        to a `WebhookSender`, to keep it in step with the webhooks a test sends."""
        return self.state.record

    def appointments(self, user_id: str) -> list[Appointment]:
        """Every appointment assigned to the staff member (booked or cancelled), by start."""
        return self.state.record.appointments_of(user_id)

    def unavailabilities(self, user_id: str) -> list[Unavailability]:
        return self.state.record.unavailabilities_of(user_id)

    def apply_envelope(self, envelope: Mapping[str, Any]) -> bool:
        """Record what an envelope says without delivering it; True when it changed the record."""
        return self.state.record.apply(envelope)

    # Changes that send no webhook (a lost one): each returns the envelope Coconut would have
    # sent. Staff are user ids on the roster; see `changes` for the rules.

    def book(
        self,
        *,
        staff: Sequence[str],
        start: datetime,
        end: datetime,
        service: payloads.Service,
        attendees: Sequence[payloads.Attendee] = (),
        meeting_method: int = payloads.AT_LOCATION,
        location: payloads.Location | None = None,
        notes: str | None = None,
        timezone: str | None = None,
        appointment_id: str | None = None,
    ) -> Envelope:
        draft = AppointmentDraft.model_validate(
            {
                "id": appointment_id,
                "staff": list(staff),
                "start": start,
                "end": end,
                "service": service,
                "attendees": list(attendees),
                "meeting_method": meeting_method,
                "location": location,
                "notes": notes,
                "timezone": timezone,
            }
        )
        return self.changes.book(draft)

    def update_appointment(self, appointment_id: str, **changes: Any) -> Envelope:
        """Any of start, end, service, attendees, meeting_method, location, notes, staff (user
        ids) and status, as one revision."""
        return self.changes.update_appointment(
            appointment_id, AppointmentUpdate.model_validate(changes)
        )

    def reassign(self, appointment_id: str, staff: Sequence[str]) -> Envelope:
        return self.update_appointment(appointment_id, staff=list(staff))

    def cancel(self, appointment_id: str) -> Envelope:
        return self.update_appointment(appointment_id, status="cancelled")

    def delete_appointment(self, appointment_id: str) -> Envelope:
        return self.changes.delete_appointment(appointment_id)

    def record_absence(
        self,
        *,
        staff: str,
        start: datetime,
        end: datetime,
        title: str = "Vacation",
        all_day: bool = False,
        timezone: str | None = None,
        absence_id: str | None = None,
    ) -> Envelope:
        draft = AbsenceDraft(
            id=absence_id,
            staff=staff,
            start=start,
            end=end,
            title=title,
            all_day=all_day,
            timezone=timezone,
        )
        return self.changes.record_absence(draft)

    def change_absence(
        self,
        absence_id: str,
        *,
        title: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        all_day: bool | None = None,
    ) -> Envelope:
        update = AbsenceUpdate(title=title, start=start, end=end, all_day=all_day)
        return self.changes.change_absence(absence_id, update)

    def delete_absence(self, absence_id: str) -> Envelope:
        return self.changes.delete_absence(absence_id)

    def between_pages(self, change: Callable[[], object]) -> None:
        """Run `change` just before the next listing page after a first one is served; with
        `FaultPlan(listing_race=True)` the walk in progress sees it (an item missed or twice)."""
        self.state.listings.between_pages(change)

    # --- requests and faults --------------------------------------------------------------------

    def request_counts(self) -> dict[RequestKey, int]:
        return self.state.request_counts()

    def requests(
        self, method: str | None = None, route: str | None = None, status: int | None = None
    ) -> int:
        """How many API requests matched all the given filters."""
        return sum(
            count
            for key, count in self.state.request_counts().items()
            if (method is None or key.method == method)
            and (route is None or key.route == route)
            and (status is None or key.status == status)
        )

    def configure_faults(self, plan: FaultPlan) -> None:
        self.faults.configure(plan)

    def reset(self) -> None:
        self.state.reset()
        self.changes.reset()
        self.faults.configure(FaultPlan())
