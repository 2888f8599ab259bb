"""A small model of Coconut's side: appointments and absences that change, one revision at a time.

Each change returns the envelope Coconut would send for it, carrying the next revision. Delivering
those envelopes (in order, twice, out of order, ...) is `delivery`'s job, not this model's.

The model keeps its items in a `CoconutRecord`: its own by default, or the API emulator's
(`Coconut(record=emulator.record)`), in which case every change is in the emulator's listings at
once, whether or not its envelope is ever delivered (an undelivered one is a lost webhook).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Literal, TypedDict, Unpack

from local.coconut_emulator.record import APPOINTMENTS, UNAVAILABILITIES, CoconutRecord, Kind
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.payloads import (
    Appointment,
    Attendee,
    Envelope,
    EventType,
    Location,
    Service,
    StaffRef,
    Unavailability,
)


class AppointmentChanges(TypedDict, total=False):
    start: datetime
    end: datetime
    service: Service
    staff: Sequence[StaffRef]
    attendees: Sequence[Attendee]
    meeting_method: int
    location: Location | None
    notes: str | None
    status: Literal["booked", "cancelled"]


class GoneError(LookupError):
    """The appointment or absence was deleted (a deletion is final) or never existed."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Coconut:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = _utc_now,
        timezone: str = payloads.DEFAULT_TIMEZONE,
        first_appointment_number: int = 1001,
        first_absence_number: int = 1,
        record: CoconutRecord | None = None,
    ) -> None:
        self.clock = clock
        self.timezone = timezone
        self.record = CoconutRecord() if record is None else record
        self._appointment_numbers = itertools.count(first_appointment_number)
        self._absence_numbers = itertools.count(first_absence_number)

    # --- reading ----------------------------------------------------------------------------

    def appointment(self, appointment_id: str) -> Appointment:
        return self._current_appointment(appointment_id)  # the record hands out copies

    def absence(self, absence_id: str) -> Unavailability:
        return self._current_absence(absence_id)

    def revision(self, resource_id: str) -> int:
        """The latest revision, including a deletion's."""
        for kind in (APPOINTMENTS, UNAVAILABILITIES):
            revision = self.record.revision(kind, resource_id)
            if revision is not None:
                return revision
        raise GoneError(resource_id)

    # --- appointments -----------------------------------------------------------------------

    def book(
        self,
        *,
        staff: Sequence[StaffRef],
        start: datetime,
        end: datetime,
        service: Service,
        attendees: Sequence[Attendee] = (),
        meeting_method: int = payloads.AT_LOCATION,
        location: Location | None = None,
        notes: str | None = None,
        timezone: str | None = None,
        appointment_id: str | None = None,
    ) -> Envelope:
        with self.record.transaction():
            appointment_id = appointment_id or self._free_id(
                "A-", self._appointment_numbers, APPOINTMENTS
            )
            if self.record.revision(APPOINTMENTS, appointment_id) is not None:
                raise ValueError("that appointment id is already taken")
            resource = payloads.appointment(
                appointment_id,
                revision=1,
                start=start,
                end=end,
                service=service,
                staff=staff,
                attendees=attendees,
                meeting_method=meeting_method,
                location=location,
                notes=notes,
                timezone=timezone or self.timezone,
            )
            self.record.put_appointment(resource)
        return self._envelope("appointment.created", resource)

    def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Envelope:
        return self._revise(appointment_id, start=start, end=end)

    def change_service(self, appointment_id: str, service: Service) -> Envelope:
        return self._revise(appointment_id, service=service)

    def change_notes(self, appointment_id: str, notes: str | None) -> Envelope:
        return self._revise(appointment_id, notes=notes)

    def change_location(
        self,
        appointment_id: str,
        location: Location | None,
        meeting_method: int = payloads.AT_LOCATION,
    ) -> Envelope:
        """Move to another branch, off-site, or (with `location=None`) to a phone or video call."""
        return self._revise(appointment_id, location=location, meeting_method=meeting_method)

    def add_attendee(self, appointment_id: str, attendee: Attendee) -> Envelope:
        with self.record.transaction():
            attendees = self._current_appointment(appointment_id)["attributes"]["attendees"]
            return self._revise(appointment_id, attendees=[*attendees, attendee])

    def update_attendee(self, appointment_id: str, attendee: Attendee) -> Envelope:
        """Replace the attendee with the same id (new phone, notes, answers, ...)."""
        with self.record.transaction():
            attendees = self._current_appointment(appointment_id)["attributes"]["attendees"]
            if all(existing["id"] != attendee["id"] for existing in attendees):
                raise LookupError("no such attendee on the appointment")
            replaced = [attendee if a["id"] == attendee["id"] else a for a in attendees]
            return self._revise(appointment_id, attendees=replaced)

    def remove_attendee(self, appointment_id: str, attendee_id: str) -> Envelope:
        with self.record.transaction():
            attendees = self._current_appointment(appointment_id)["attributes"]["attendees"]
            return self._revise(
                appointment_id, attendees=[a for a in attendees if a["id"] != attendee_id]
            )

    def reassign(self, appointment_id: str, staff: Sequence[StaffRef]) -> Envelope:
        """New staff list; arrives as `appointment.updated` with a different `staff`."""
        return self._revise(appointment_id, staff=staff)

    def cancel(self, appointment_id: str) -> Envelope:
        return self.update(appointment_id, status="cancelled")

    def update(self, appointment_id: str, **changes: Unpack[AppointmentChanges]) -> Envelope:
        """Any changes at once, as one revision; `appointment.cancelled` when it cancels."""
        with self.record.transaction():
            status = self._current_appointment(appointment_id)["attributes"]["status"]
            cancels = changes.get("status") == "cancelled" and status != "cancelled"
            event: EventType = "appointment.cancelled" if cancels else "appointment.updated"
            return self._revise(appointment_id, event, **changes)

    def delete(self, appointment_id: str, *, full: bool = False) -> Envelope:
        """Delete for good; by default the envelope carries only id and revision."""
        with self.record.transaction():
            current = self._current_appointment(appointment_id)
            revision = current["attributes"]["revision"] + 1
            self.record.delete(APPOINTMENTS, appointment_id, revision)
        if full:
            current["attributes"]["revision"] = revision
            return self._envelope("appointment.deleted", current)
        deletion = payloads.deletion("appointments", appointment_id, revision)
        return self._envelope("appointment.deleted", deletion)

    # --- absences (unavailabilities) ----------------------------------------------------------

    def record_absence(
        self,
        *,
        staff: StaffRef,
        start: datetime,
        end: datetime,
        title: str = "Vacation",
        all_day: bool = False,
        timezone: str | None = None,
        absence_id: str | None = None,
    ) -> Envelope:
        with self.record.transaction():
            absence_id = absence_id or self._free_id("N-", self._absence_numbers, UNAVAILABILITIES)
            if self.record.revision(UNAVAILABILITIES, absence_id) is not None:
                raise ValueError("that absence id is already taken")
            resource = payloads.unavailability(
                absence_id,
                revision=1,
                title=title,
                start=start,
                end=end,
                staff=staff,
                all_day=all_day,
                timezone=timezone or self.timezone,
            )
            self.record.put_unavailability(resource)
        return self._envelope("unavailability.created", resource)

    def change_absence(
        self,
        absence_id: str,
        *,
        title: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        all_day: bool | None = None,
    ) -> Envelope:
        """Change any of title, period, all-day; arguments left as None stay as they are."""
        with self.record.transaction():
            current = self._current_absence(absence_id)["attributes"]
            resource = payloads.unavailability(
                absence_id,
                revision=current["revision"] + 1,
                title=current["title"] if title is None else title,
                start=start or datetime.fromisoformat(current["start"]),
                end=end or datetime.fromisoformat(current["end"]),
                staff=current["staff"],
                all_day=current["all_day"] if all_day is None else all_day,
                timezone=current["timezone"],
            )
            self.record.put_unavailability(resource)
        return self._envelope("unavailability.updated", resource)

    def delete_absence(self, absence_id: str, *, full: bool = False) -> Envelope:
        with self.record.transaction():
            current = self._current_absence(absence_id)
            revision = current["attributes"]["revision"] + 1
            self.record.delete(UNAVAILABILITIES, absence_id, revision)
        if full:
            current["attributes"]["revision"] = revision
            return self._envelope("unavailability.deleted", current)
        deletion = payloads.deletion("unavailabilities", absence_id, revision)
        return self._envelope("unavailability.deleted", deletion)

    # --- internals ----------------------------------------------------------------------------

    def _free_id(self, prefix: str, numbers: Iterator[int], kind: Kind) -> str:
        """The next numbered id nobody used: a shared record may hold ids from other models."""
        while True:
            candidate = f"{prefix}{next(numbers)}"
            if self.record.revision(kind, candidate) is None:
                return candidate

    def _current_appointment(self, appointment_id: str) -> Appointment:
        held = self.record.appointment(appointment_id)
        if held is None:
            raise GoneError(appointment_id)
        return held

    def _current_absence(self, absence_id: str) -> Unavailability:
        held = self.record.unavailability(absence_id)
        if held is None:
            raise GoneError(absence_id)
        return held

    def _revise(
        self,
        appointment_id: str,
        event: EventType = "appointment.updated",
        **changes: Unpack[AppointmentChanges],
    ) -> Envelope:
        """The next revision with `changes` applied, rebuilt through the builder so it is
        checked like a new one."""
        with self.record.transaction():
            current = self._current_appointment(appointment_id)["attributes"]
            resource = payloads.appointment(
                appointment_id,
                revision=current["revision"] + 1,
                start=changes.get("start") or datetime.fromisoformat(current["start"]),
                end=changes.get("end") or datetime.fromisoformat(current["end"]),
                service=changes.get("service", current["service"]),
                staff=changes.get("staff", current["staff"]),
                attendees=changes.get("attendees", current["attendees"]),
                meeting_method=changes.get("meeting_method", current["meeting_method"]),
                location=changes.get("location", current.get("location")),
                notes=changes.get("notes", current.get("notes")),
                status=changes.get("status", current["status"]),
                timezone=current["timezone"],
            )
            self.record.put_appointment(resource)
        return self._envelope(event, resource)

    def _envelope(
        self, event_type: EventType, data: Appointment | Unavailability | payloads.Deletion
    ) -> Envelope:
        return payloads.envelope(event_type, copy.deepcopy(data), created_at=self.clock())
