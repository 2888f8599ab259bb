"""What the service keeps of a Coconut item: what its Exchange event is made of, nothing more.

A delivery carries more than the event needs (an attendee's landline, Coconut's customer ids,
staff names, the branch's name, the appointment's own time zone). The record keeps only what
`sync.export.rendering` writes and what deciding about the event reads (status, times, the
meeting method, staff ids); a field the models require but the event never shows is blanked
(staff names and e-mails inside the resource, a location's name, the time zone), and an
attendee's Coconut id becomes their position in the list. Staff e-mails, which find a staff
member's mailbox, are kept beside the resource (`DesiredItem.staff_emails`).

A cancelled appointment has no event, so nothing of its content is kept beyond its times.

`tests/sync/test_kept_content.py` holds the promise: the event rendered from what is kept is the
event rendered from the whole delivery.
"""

from __future__ import annotations

from sync.coconut.webhook_models import (
    Appointment,
    Attendee,
    Location,
    Service,
    StaffRef,
    Unavailability,
)


def kept_for_event(resource: Appointment | Unavailability) -> Appointment | Unavailability:
    """`resource` with everything its event does not need taken out (idempotent)."""
    if isinstance(resource, Unavailability):
        return resource.model_copy(update={"timezone": "", "staff": _staff_id_only(resource.staff)})
    staff = tuple(_staff_id_only(member) for member in resource.staff)
    if resource.status == "cancelled":
        return resource.model_copy(
            update={
                "timezone": "",
                "notes": None,
                "service": Service(id=resource.service.id, name=""),
                "location": None,
                "staff": staff,
                "attendees": None,
            }
        )
    return resource.model_copy(
        update={
            "timezone": "",
            "location": _address_only(resource),
            "staff": staff,
            "attendees": _attendees(resource.attendees),
        }
    )


def _staff_id_only(member: StaffRef) -> StaffRef:
    return StaffRef(id=member.id, email="", first_name="", last_name="")


def _address_only(appointment: Appointment) -> Location | None:
    place = appointment.location
    if place is None or appointment.is_virtual:
        return None  # a virtual appointment's event has no location
    return Location(id=place.id, name="", address=place.address)


def _attendees(attendees: tuple[Attendee, ...] | None) -> tuple[Attendee, ...] | None:
    if attendees is None:
        return None
    return tuple(
        attendee.model_copy(update={"id": str(number), "phone": None})
        for number, attendee in enumerate(attendees, start=1)
    )
