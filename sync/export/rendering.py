"""The Exchange event a Coconut appointment or absence should be (DESIGN.md, "Export").

Choices made here:

- Absences show as busy, as DESIGN.md says (not `oof`): Coconut already decides what blocks
  booking, and busy is what Exchange shows for the staff member's own appointments.
- An all-day absence becomes an all-day event only when it runs from midnight to midnight in the
  mailbox's zone (Graph's rule for `isAllDay`); seen from another zone it is a timed event over the
  same instants, so the staff member is blocked exactly when Coconut says.
- The location is always sent, blank when there is none: a PATCH must clear an address left over
  from an earlier revision.
- Reminders: absences get none (a reminder for a vacation is noise); for appointments the field is
  not sent, so the mailbox's default applies and a reminder the staff member sets is kept.
- Customers never become Graph `attendees` (that would e-mail them from the staff mailbox): they
  are listed in the body only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sync.coconut.webhook_models import Appointment, Attendee, Unavailability
from sync.desired_state import DesiredItem
from sync.timezones import graph_date_time


class GraphDateTime(BaseModel):
    """Graph's `dateTimeTimeZone`: wall-clock time and the zone it is read in."""

    model_config = ConfigDict(frozen=True)

    date_time: str
    time_zone: str

    def to_graph(self) -> dict[str, str]:
        return {"dateTime": self.date_time, "timeZone": self.time_zone}


class EventDraft(BaseModel):
    """The content the service owns of one Exchange event (ids and tags are the adapter's)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    # Plain text; holds customer data, so it stays out of repr().
    body: str = Field(repr=False)
    start: GraphDateTime
    end: GraphDateTime
    location: str = Field(repr=False)
    show_as: Literal["busy"] = "busy"
    is_all_day: bool = False
    # None: not sent, the mailbox's default reminder applies.
    is_reminder_on: bool | None = None

    def to_graph(self) -> dict[str, Any]:
        """The JSON body for Graph's event POST and PATCH."""
        event: dict[str, Any] = {
            "subject": self.subject,
            "body": {"contentType": "text", "content": self.body},
            "start": self.start.to_graph(),
            "end": self.end.to_graph(),
            "location": {"displayName": self.location},
            "showAs": self.show_as,
            "isAllDay": self.is_all_day,
        }
        if self.is_reminder_on is not None:
            event["isReminderOn"] = self.is_reminder_on
        return event

    def content_hash(self) -> str:
        """A stable digest of what would be written: equal hashes mean nothing to update."""
        canonical = json.dumps(
            self.to_graph(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def render_event(item: DesiredItem, zone_name: str) -> EventDraft:
    """The event `item` should be in a calendar whose mailbox time zone is `zone_name`."""
    match item.resource:
        case Appointment() as appointment:
            return _appointment_event(appointment, zone_name)
        case Unavailability() as absence:
            return _absence_event(absence, zone_name)
        case None:
            raise ValueError("a deleted item has no event")


def _appointment_event(appointment: Appointment, zone_name: str) -> EventDraft:
    place = None if appointment.is_virtual else appointment.location
    return EventDraft(
        subject=appointment.service.name,
        body=appointment_description(appointment),
        start=_written(appointment.start, zone_name),
        end=_written(appointment.end, zone_name),
        location=place.address if place is not None else "",
    )


def _absence_event(absence: Unavailability, zone_name: str) -> EventDraft:
    start = _written(absence.start, zone_name)
    end = _written(absence.end, zone_name)
    all_day = absence.all_day and _at_midnight(start, zone_name) and _at_midnight(end, zone_name)
    return EventDraft(
        subject=absence.title,
        body="",
        start=start,
        end=end,
        location="",
        is_all_day=all_day,
        is_reminder_on=False,
    )


def _written(instant: datetime, zone_name: str) -> GraphDateTime:
    graph = graph_date_time(instant, zone_name)
    return GraphDateTime(date_time=graph["dateTime"], time_zone=graph["timeZone"])


def _at_midnight(moment: GraphDateTime, zone_name: str) -> bool:
    # Written in the mailbox zone itself (not the UTC fallback for an ambiguous hour) at 00:00.
    return moment.time_zone == zone_name and moment.date_time.endswith("T00:00:00")


def appointment_description(appointment: Appointment) -> str:
    """The event body: the appointment notes, then each attendee with their details and answers.

    Only the mobile number is shown (`cell_phone`); the other phone never is. Absent or blank
    values are left out rather than shown as empty labels.
    """
    sections: list[str] = []
    if _given(appointment.notes):
        sections.append(f"Notes: {appointment.notes}")
    attendees = appointment.attendees or ()
    for number, attendee in enumerate(attendees, start=1):
        heading = f"Attendee {number}" if len(attendees) > 1 else "Attendee"
        sections.append("\n".join([heading, *_attendee_lines(attendee)]))
    return "\n\n".join(sections)


def _attendee_lines(attendee: Attendee) -> Iterator[str]:
    labelled = (
        ("First name", attendee.first_name),
        ("Last name", attendee.last_name),
        ("E-mail", attendee.email),
        ("Mobile phone", attendee.cell_phone),
        ("Notes", attendee.notes),
    )
    for label, value in labelled:
        if _given(value):
            yield f"{label}: {value}"
    for answer in attendee.answers or ():
        if _given(answer.question) or _given(answer.answer):
            yield f"Q: {answer.question}"
            yield f"A: {answer.answer}"


def _given(value: str | None) -> bool:
    return value is not None and value.strip() != ""
