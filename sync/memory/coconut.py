"""Coconut in memory: the roster, its own record of appointments and absences, and each staff
member's external events (busy blocks) (`sync.ports.CoconutBusyTime`, `CoconutRoster`,
`CoconutListings`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sync.coconut.api import CoconutUser, UnknownCoconutUser
from sync.coconut.webhook_models import (
    Appointment,
    AppointmentChange,
    AppointmentDeleted,
    Delivery,
    Unavailability,
    UnavailabilityChange,
    UnavailabilityDeleted,
)
from sync.desired_state import delivery_key
from sync.imports.busy_time import BusyBlock
from sync.memory.faults import Faults

COCONUT: Final = "coconut"


class MemoryCoconut:
    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.users: dict[str, CoconutUser] = {}
        # User id -> external id -> the resource, as Coconut lists it.
        self.blocks: dict[str, dict[str, dict[str, Any]]] = {}
        # Coconut's own record: item key -> the appointment or absence (deleted ones absent).
        self.record: dict[str, Appointment | Unavailability] = {}
        self.deleted: set[str] = set()
        self.requests = 0

    def add_user(self, user_id: str, email: str, *, calendar_sync: bool = True) -> None:
        self.users[user_id] = CoconutUser(id=user_id, email=email, calendar_sync=calendar_sync)
        self.blocks.setdefault(user_id, {})

    def apply(self, delivery: Delivery) -> None:
        """Keep Coconut's own record in step with what a webhook says (Coconut sends webhooks
        about changes to its record: a test that delivers one changes the record too). Like
        Coconut's record, it never goes back to an older revision, and a deletion is final."""
        key = delivery_key(delivery)
        if key is None or key in self.deleted:
            return
        match delivery:
            case (
                AppointmentChange(appointment=resource)
                | UnavailabilityChange(unavailability=resource)
            ):
                current = self.record.get(key)
                if current is None or current.revision < resource.revision:
                    self.record[key] = resource
            case AppointmentDeleted() | UnavailabilityDeleted():
                self.record.pop(key, None)
                self.deleted.add(key)
            case _:
                pass

    async def roster(self) -> list[CoconutUser]:
        self._request()
        return list(self.users.values())

    async def appointments(self, user_id: str, *, end_after: datetime) -> list[Appointment]:
        self._request()
        self._held(user_id)
        return sorted(
            (
                item
                for item in self.record.values()
                if isinstance(item, Appointment)
                and item.end > end_after
                and any(member.id == user_id for member in item.staff)
            ),
            key=lambda item: (item.start, item.id),
        )

    async def unavailabilities(self, user_id: str, *, end_after: datetime) -> list[Unavailability]:
        self._request()
        self._held(user_id)
        return sorted(
            (
                item
                for item in self.record.values()
                if isinstance(item, Unavailability)
                and item.end > end_after
                and item.staff.id == user_id
            ),
            key=lambda item: (item.start, item.id),
        )

    async def busy_blocks(self, user_id: str) -> dict[str, dict[str, Any]]:
        self._request()
        return dict(self._held(user_id))

    async def put_busy_block(self, user_id: str, block: BusyBlock) -> bool:
        self._request()
        held = self._held(user_id)
        created = block.external_id not in held
        held[block.external_id] = block.coconut_data()
        self.faults.written("crash_after_coconut_writes")
        return created

    async def delete_busy_block(self, user_id: str, external_id: str) -> None:
        self._request()
        self.blocks.get(user_id, {}).pop(external_id, None)  # 404 counts as done
        self.faults.written("crash_after_coconut_writes")

    def _held(self, user_id: str) -> dict[str, dict[str, Any]]:
        if user_id not in self.users:
            raise UnknownCoconutUser(user_id)
        return self.blocks.setdefault(user_id, {})

    def _request(self) -> None:
        self.requests += 1
        self.faults.check(COCONUT)
