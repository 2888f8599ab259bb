"""Coconut's own record of appointments and absences: the source of truth its listings serve.

Revisions rule the record exactly as they rule webhook deliveries: a resource replaces the one
held only with a higher revision, and a deletion is final (its revision is kept, so nothing older
brings the item back and the id is never reused). The API's listings read it on uvicorn's thread
while tests, the webhook model and the sender write it from theirs, so every access holds one
lock and hands out copies.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast

if TYPE_CHECKING:  # payloads' package imports this module: types only, to avoid a cycle
    from local.coconut_emulator.webhooks.payloads import Appointment, Unavailability

Kind = Literal["appointments", "unavailabilities"]
APPOINTMENTS: Final = "appointments"
UNAVAILABILITIES: Final = "unavailabilities"
_CHANGE_EVENTS: Final[dict[str, Kind]] = {
    "appointment.created": APPOINTMENTS,
    "appointment.updated": APPOINTMENTS,
    "appointment.cancelled": APPOINTMENTS,
    "unavailability.created": UNAVAILABILITIES,
    "unavailability.updated": UNAVAILABILITIES,
}
_DELETION_EVENTS: Final[dict[str, Kind]] = {
    "appointment.deleted": APPOINTMENTS,
    "unavailability.deleted": UNAVAILABILITIES,
}


class CoconutRecord:
    def __init__(self) -> None:
        # Re-entrant: `transaction` holds it around reads and writes that take it again.
        self._lock = threading.RLock()
        self._appointments: dict[str, Appointment] = {}
        self._unavailabilities: dict[str, Unavailability] = {}
        # (kind, id) -> the deletion's revision.
        self._deleted: dict[tuple[Kind, str], int] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the record across a read and the write that follows from it (the next revision
        must follow the one just read, even when another thread changes the same item)."""
        with self._lock:
            yield

    # --- reading ----------------------------------------------------------------------------

    def appointment(self, appointment_id: str) -> Appointment | None:
        with self._lock:
            held = self._appointments.get(appointment_id)
            return copy.deepcopy(held) if held is not None else None

    def unavailability(self, unavailability_id: str) -> Unavailability | None:
        with self._lock:
            held = self._unavailabilities.get(unavailability_id)
            return copy.deepcopy(held) if held is not None else None

    def revision(self, kind: Kind, resource_id: str) -> int | None:
        """The latest revision, a deletion's included; None for an id never seen."""
        with self._lock:
            if (kind, resource_id) in self._deleted:
                return self._deleted[kind, resource_id]
            held = self._held(kind).get(resource_id)
            return held["attributes"]["revision"] if held is not None else None

    def is_deleted(self, kind: Kind, resource_id: str) -> bool:
        with self._lock:
            return (kind, resource_id) in self._deleted

    def appointments_of(self, user_id: str, end_after: datetime | None = None) -> list[Appointment]:
        """Every appointment assigned to `user_id` (booked or cancelled), ordered by start."""
        with self._lock:
            found = [
                copy.deepcopy(item)
                for item in self._appointments.values()
                if any(staff["id"] == user_id for staff in item["attributes"]["staff"])
                and _ends_after(item["attributes"]["end"], end_after)
            ]
        return sorted(found, key=_by_start)

    def unavailabilities_of(
        self, user_id: str, end_after: datetime | None = None
    ) -> list[Unavailability]:
        """Every absence of `user_id`, ordered by start."""
        with self._lock:
            found = [
                copy.deepcopy(item)
                for item in self._unavailabilities.values()
                if item["attributes"]["staff"]["id"] == user_id
                and _ends_after(item["attributes"]["end"], end_after)
            ]
        return sorted(found, key=_by_start)

    # --- writing ----------------------------------------------------------------------------

    def put_appointment(self, resource: Appointment) -> bool:
        """Hold `resource` unless its revision is not newer; True when it was taken."""
        with self._lock:
            if not self._is_newer(APPOINTMENTS, resource["id"], resource["attributes"]["revision"]):
                return False
            self._appointments[resource["id"]] = copy.deepcopy(resource)
            return True

    def put_unavailability(self, resource: Unavailability) -> bool:
        with self._lock:
            revision = resource["attributes"]["revision"]
            if not self._is_newer(UNAVAILABILITIES, resource["id"], revision):
                return False
            self._unavailabilities[resource["id"]] = copy.deepcopy(resource)
            return True

    def delete(self, kind: Kind, resource_id: str, revision: int) -> bool:
        """Delete for good at `revision`; True unless something as new or newer is held."""
        with self._lock:
            if not self._is_newer(kind, resource_id, revision):
                return False
            self._held(kind).pop(resource_id, None)
            self._deleted[kind, resource_id] = revision
            return True

    def apply(self, envelope: Mapping[str, Any]) -> bool:
        """Record what a webhook envelope says; True when it changed the record.

        An unknown event type, or a resource too malformed to list (a deliberately bad
        delivery), changes nothing: Coconut's record never held such a thing.
        """
        event_type, data = envelope.get("type"), envelope.get("data")
        if not isinstance(event_type, str) or not isinstance(data, dict):
            return False
        resource_id = data.get("id")
        attributes = data.get("attributes")
        if not isinstance(resource_id, str) or not isinstance(attributes, dict):
            return False
        revision = attributes.get("revision")
        if type(revision) is not int or revision < 1:
            return False
        if event_type in _DELETION_EVENTS:
            return self.delete(_DELETION_EVENTS[event_type], resource_id, revision)
        kind = _CHANGE_EVENTS.get(event_type)
        if kind is None or data.get("type") != kind or not _listable(kind, attributes):
            return False
        if kind == APPOINTMENTS:
            return self.put_appointment(cast("Appointment", data))
        return self.put_unavailability(cast("Unavailability", data))

    def clear(self) -> None:
        with self._lock:
            self._appointments.clear()
            self._unavailabilities.clear()
            self._deleted.clear()

    # --- internals --------------------------------------------------------------------------

    def _held(self, kind: Kind) -> dict[str, Any]:
        return self._appointments if kind == APPOINTMENTS else self._unavailabilities

    def _is_newer(self, kind: Kind, resource_id: str, revision: int) -> bool:
        held = self.revision(kind, resource_id)
        return held is None or (revision > held and (kind, resource_id) not in self._deleted)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ends_after(end: str, end_after: datetime | None) -> bool:
    return end_after is None or _instant(end) > end_after


def _by_start(item: Appointment | Unavailability) -> tuple[datetime, str]:
    return _instant(item["attributes"]["start"]), item["id"]


def _listable(kind: Kind, attributes: dict[str, Any]) -> bool:
    """Enough of a resource to file and order it: an aware period and the staff it belongs to."""
    try:
        start, end = _instant(attributes["start"]), _instant(attributes["end"])
    except (KeyError, TypeError, ValueError):
        return False
    if start.utcoffset() is None or end.utcoffset() is None:
        return False
    staff = attributes.get("staff")
    if kind == UNAVAILABILITIES:
        return isinstance(staff, dict) and isinstance(staff.get("id"), str)
    return isinstance(staff, list) and all(
        isinstance(member, dict) and isinstance(member.get("id"), str) for member in staff
    )
