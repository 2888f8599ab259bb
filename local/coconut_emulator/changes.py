"""Changes to Coconut's record that send no webhook: each stands for a change whose webhook was
lost (or is still to come). The listings show it at once; nothing tells the service.

Staff are named by user id and filled in from the roster, as Coconut's own screens do. Times
without an offset are wall-clock time in the item's zone; times with one are turned into that
zone, so the record reads like Coconut's. Each change returns the envelope Coconut would have sent,
so a test can still deliver it late. The drafts are the control API's bodies as well.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from local.coconut_emulator.state import CoconutState, UnknownUser
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import AppointmentChanges, Coconut
from local.coconut_emulator.webhooks.payloads import Envelope, StaffRef

# Far from the numbers a test's own `Coconut()` starts at (A-1001, N-1): ids made here and ids
# made there do not collide when both end up in one record.
FIRST_APPOINTMENT_NUMBER = 9001
FIRST_ABSENCE_NUMBER = 9001


class UnknownStaff(LookupError):
    """A staff user id that is not on the roster; `pointer` says where in the draft."""

    def __init__(self, pointer: str) -> None:
        super().__init__("no such user on the roster")
        self.pointer = pointer


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceIn(_Part):
    id: str = Field(min_length=1)
    name: str


class LocationIn(_Part):
    id: str = Field(min_length=1)
    name: str
    address: str


class AnswerIn(_Part):
    question: str
    answer: str


class AttendeeIn(_Part):
    id: str = Field(min_length=1)
    first_name: str
    last_name: str
    email: str | None = None
    cell_phone: str | None = None
    phone: str | None = None
    notes: str | None = None
    answers: list[AnswerIn] | None = None


def _known_zone(name: str | None) -> str | None:
    if name is not None:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("timezone must be an IANA time zone") from None
    return name


class AppointmentDraft(_Part):
    id: str | None = Field(default=None, min_length=1)
    staff: list[str] = Field(min_length=1)
    start: datetime
    end: datetime
    service: ServiceIn
    attendees: list[AttendeeIn] = Field(default_factory=list)
    meeting_method: int = payloads.AT_LOCATION
    location: LocationIn | None = None
    notes: str | None = None
    timezone: str | None = None

    _zone = field_validator("timezone")(_known_zone)


class AppointmentUpdate(_Part):
    """Any of these, applied as one revision; `staff` reassigns, `status: cancelled` cancels."""

    start: datetime | None = None
    end: datetime | None = None
    service: ServiceIn | None = None
    attendees: list[AttendeeIn] | None = None
    meeting_method: int | None = None
    location: LocationIn | None = None
    notes: str | None = None
    staff: list[str] | None = None
    status: Literal["booked", "cancelled"] | None = None

    # Only location and notes can be cleared; None elsewhere is only the default, "not given".
    @field_validator(
        "start", "end", "service", "attendees", "meeting_method", "staff", "status", mode="before"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value


class AbsenceDraft(_Part):
    id: str | None = Field(default=None, min_length=1)
    staff: str
    start: datetime
    end: datetime
    title: str = "Vacation"
    all_day: bool = False
    timezone: str | None = None

    _zone = field_validator("timezone")(_known_zone)


class AbsenceUpdate(_Part):
    title: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    all_day: bool | None = None


class SilentChanges:
    """Create, update, reassign, cancel and delete in the record without any webhook.

    Raises `UnknownStaff` for a staff id not on the roster, `GoneError` for an item that does not
    exist (or was deleted), and `ValueError` (a fixed text) for what the contract rules out.
    """

    def __init__(self, state: CoconutState) -> None:
        self._state = state
        self.reset()

    def reset(self) -> None:
        """Number ids from the start again (after the record was emptied)."""
        self._coconut = Coconut(
            record=self._state.record,
            first_appointment_number=FIRST_APPOINTMENT_NUMBER,
            first_absence_number=FIRST_ABSENCE_NUMBER,
        )

    def book(self, draft: AppointmentDraft) -> Envelope:
        zone = draft.timezone or self._coconut.timezone
        return self._coconut.book(
            appointment_id=draft.id,
            staff=self._staff(draft.staff),
            start=_in_zone(draft.start, zone),
            end=_in_zone(draft.end, zone),
            service=cast(payloads.Service, draft.service.model_dump()),
            attendees=[_attendee(attendee) for attendee in draft.attendees],
            meeting_method=draft.meeting_method,
            location=_location(draft.location),
            notes=draft.notes,
            timezone=zone,
        )

    def update_appointment(self, appointment_id: str, update: AppointmentUpdate) -> Envelope:
        given = update.model_fields_set
        changes: AppointmentChanges = {}
        with self._state.record.transaction():
            zone = self._coconut.appointment(appointment_id)["attributes"]["timezone"]
            if update.start is not None:
                changes["start"] = _in_zone(update.start, zone)
            if update.end is not None:
                changes["end"] = _in_zone(update.end, zone)
            if update.service is not None:
                changes["service"] = cast(payloads.Service, update.service.model_dump())
            if update.attendees is not None:
                changes["attendees"] = [_attendee(attendee) for attendee in update.attendees]
            if update.meeting_method is not None:
                changes["meeting_method"] = update.meeting_method
            if "location" in given:
                changes["location"] = _location(update.location)
            if "notes" in given:
                changes["notes"] = update.notes
            if update.staff is not None:
                changes["staff"] = self._staff(update.staff)
            if update.status is not None:
                changes["status"] = update.status
            return self._coconut.update(appointment_id, **changes)

    def delete_appointment(self, appointment_id: str) -> Envelope:
        return self._coconut.delete(appointment_id)

    def record_absence(self, draft: AbsenceDraft) -> Envelope:
        zone = draft.timezone or self._coconut.timezone
        (staff,) = self._staff([draft.staff], pointer="/staff")
        return self._coconut.record_absence(
            absence_id=draft.id,
            staff=staff,
            start=_in_zone(draft.start, zone),
            end=_in_zone(draft.end, zone),
            title=draft.title,
            all_day=draft.all_day,
            timezone=zone,
        )

    def change_absence(self, absence_id: str, update: AbsenceUpdate) -> Envelope:
        with self._state.record.transaction():
            zone = self._coconut.absence(absence_id)["attributes"]["timezone"]
            return self._coconut.change_absence(
                absence_id,
                title=update.title,
                start=_in_zone(update.start, zone) if update.start is not None else None,
                end=_in_zone(update.end, zone) if update.end is not None else None,
                all_day=update.all_day,
            )

    def delete_absence(self, absence_id: str) -> Envelope:
        return self._coconut.delete_absence(absence_id)

    def _staff(self, user_ids: list[str], pointer: str = "/staff/{index}") -> list[StaffRef]:
        refs: list[StaffRef] = []
        for index, user_id in enumerate(user_ids):
            try:
                user = self._state.user(user_id)
            except UnknownUser:
                raise UnknownStaff(pointer.format(index=index)) from None
            refs.append(payloads.staff_member(user.id, user.email, user.first_name, user.last_name))
        return refs


def _in_zone(moment: datetime, zone: str) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(ZoneInfo(zone))


def _attendee(attendee: AttendeeIn) -> payloads.Attendee:
    data: dict[str, Any] = attendee.model_dump()
    return cast(payloads.Attendee, data)


def _location(location: LocationIn | None) -> payloads.Location | None:
    return cast(payloads.Location, location.model_dump()) if location is not None else None
