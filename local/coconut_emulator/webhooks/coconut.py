"""A small model of Coconut's side: appointments and absences that change, one revision at a time.

Each change returns the envelope Coconut would send for it, carrying the next revision. Delivering
those envelopes (in order, twice, out of order, ...) is `delivery`'s job, not this model's.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal, TypedDict, Unpack

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
    ) -> None:
        self.clock = clock
        self.timezone = timezone
        self._appointment_numbers = itertools.count(first_appointment_number)
        self._absence_numbers = itertools.count(1)
        self._appointments: dict[str, Appointment] = {}
        self._absences: dict[str, Unavailability] = {}
        # Deleted id -> the deletion's revision; kept so ids are never reused.
        self._deleted: dict[str, int] = {}

    # --- reading ----------------------------------------------------------------------------

    def appointment(self, appointment_id: str) -> Appointment:
        return copy.deepcopy(self._current_appointment(appointment_id))

    def absence(self, absence_id: str) -> Unavailability:
        return copy.deepcopy(self._current_absence(absence_id))

    def revision(self, resource_id: str) -> int:
        """The latest revision, including a deletion's."""
        if resource_id in self._deleted:
            return self._deleted[resource_id]
        if resource_id in self._appointments:
            return self._appointments[resource_id]["attributes"]["revision"]
        return self._current_absence(resource_id)["attributes"]["revision"]

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
        appointment_id = appointment_id or f"A-{next(self._appointment_numbers)}"
        if appointment_id in self._appointments or appointment_id in self._deleted:
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
        self._appointments[appointment_id] = resource
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
        attendees = self._current_appointment(appointment_id)["attributes"]["attendees"]
        return self._revise(appointment_id, attendees=[*attendees, attendee])

    def update_attendee(self, appointment_id: str, attendee: Attendee) -> Envelope:
        """Replace the attendee with the same id (new phone, notes, answers, ...)."""
        attendees = self._current_appointment(appointment_id)["attributes"]["attendees"]
        if all(existing["id"] != attendee["id"] for existing in attendees):
            raise LookupError("no such attendee on the appointment")
        replaced = [attendee if a["id"] == attendee["id"] else a for a in attendees]
        return self._revise(appointment_id, attendees=replaced)

    def remove_attendee(self, appointment_id: str, attendee_id: str) -> Envelope:
        attendees = self._current_appointment(appointment_id)["attributes"]["attendees"]
        return self._revise(
            appointment_id, attendees=[a for a in attendees if a["id"] != attendee_id]
        )

    def reassign(self, appointment_id: str, staff: Sequence[StaffRef]) -> Envelope:
        """New staff list; arrives as `appointment.updated` with a different `staff`."""
        return self._revise(appointment_id, staff=staff)

    def cancel(self, appointment_id: str) -> Envelope:
        return self._revise(appointment_id, "appointment.cancelled", status="cancelled")

    def delete(self, appointment_id: str, *, full: bool = False) -> Envelope:
        """Delete for good; by default the envelope carries only id and revision."""
        current = self._current_appointment(appointment_id)
        revision = current["attributes"]["revision"] + 1
        del self._appointments[appointment_id]
        self._deleted[appointment_id] = revision
        if full:
            resource = copy.deepcopy(current)
            resource["attributes"]["revision"] = revision
            return self._envelope("appointment.deleted", resource)
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
        absence_id = absence_id or f"N-{next(self._absence_numbers)}"
        if absence_id in self._absences or absence_id in self._deleted:
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
        self._absences[absence_id] = resource
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
        current = self._current_absence(absence_id)["attributes"]
        timezone = current["timezone"]
        resource = payloads.unavailability(
            absence_id,
            revision=current["revision"] + 1,
            title=current["title"] if title is None else title,
            start=start or datetime.fromisoformat(current["start"]),
            end=end or datetime.fromisoformat(current["end"]),
            staff=current["staff"],
            all_day=current["all_day"] if all_day is None else all_day,
            timezone=timezone,
        )
        self._absences[absence_id] = resource
        return self._envelope("unavailability.updated", resource)

    def delete_absence(self, absence_id: str, *, full: bool = False) -> Envelope:
        current = self._current_absence(absence_id)
        revision = current["attributes"]["revision"] + 1
        del self._absences[absence_id]
        self._deleted[absence_id] = revision
        if full:
            resource = copy.deepcopy(current)
            resource["attributes"]["revision"] = revision
            return self._envelope("unavailability.deleted", resource)
        deletion = payloads.deletion("unavailabilities", absence_id, revision)
        return self._envelope("unavailability.deleted", deletion)

    # --- internals ----------------------------------------------------------------------------

    def _current_appointment(self, appointment_id: str) -> Appointment:
        try:
            return self._appointments[appointment_id]
        except KeyError:
            raise GoneError(appointment_id) from None

    def _current_absence(self, absence_id: str) -> Unavailability:
        try:
            return self._absences[absence_id]
        except KeyError:
            raise GoneError(absence_id) from None

    def _revise(
        self,
        appointment_id: str,
        event: EventType = "appointment.updated",
        **changes: Unpack[AppointmentChanges],
    ) -> Envelope:
        """The next revision with `changes` applied, rebuilt through the builder so it is
        checked like a new one."""
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
        self._appointments[appointment_id] = resource
        return self._envelope(event, resource)

    def _envelope(
        self, event_type: EventType, data: Appointment | Unavailability | payloads.Deletion
    ) -> Envelope:
        return payloads.envelope(event_type, copy.deepcopy(data), created_at=self.clock())
