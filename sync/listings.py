"""Coconut's own record as the source of truth: onboarding and the scheduled repair.

Webhooks are the fast path, not the only one (contracts/coconut-api.md). A staff member's
appointments and absences are read from Coconut's listings and recorded exactly as webhooks would
be (`DesiredItemStore.record`: the highest revision wins, a deletion stays final):

- on their first sync (onboarding): new on the roster, calendar sync turned back on, a reconnect,
  an ops resync — everything already booked appears in Outlook;
- on `COCONUT_RECONCILE_SCHEDULE`: whatever a lost webhook left behind is repaired.

An item the service holds as this staff member's, ending inside the listed window, that a
complete listing no longer shows has left their calendar (deleted, or reassigned): it is
withdrawn from them, unless a webhook recorded it after the listing began (the listing raced
it) or a second listing, read at once, shows it after all (a change while the pages were read
shifted it out of them). Items that ended before the window are never touched: they only fell
out of the listing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sync.coconut.webhook_models import (
    Appointment,
    AppointmentChange,
    Unavailability,
    UnavailabilityChange,
)
from sync.desired_items import DesiredItemStore
from sync.desired_state import delivery_key
from sync.ports import CoconutListings, ItemLinks

# What a recorded listing item stands in for, in logs: there is no delivery.
LISTING_DELIVERY_ID = "listing"


@dataclass
class ListingRepair:
    """What one reconcile of a staff member's listings changed in the desired state."""

    created: int = 0  # items the service did not know
    updated: int = 0  # newer revisions than the service held
    removed: int = 0  # items withdrawn from this staff member
    # Staff whose calendars the changes touch (a reassignment reaches others too).
    staff_to_sync: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


def _as_delivery(
    resource: Appointment | Unavailability,
) -> AppointmentChange | UnavailabilityChange:
    if isinstance(resource, Appointment):
        event = "appointment.cancelled" if resource.status == "cancelled" else "appointment.updated"
        return AppointmentChange(
            delivery_id=LISTING_DELIVERY_ID, event_type=event, appointment=resource
        )
    return UnavailabilityChange(
        delivery_id=LISTING_DELIVERY_ID,
        event_type="unavailability.updated",
        unavailability=resource,
    )


class ListingReconciler:
    def __init__(
        self, listings: CoconutListings, items: DesiredItemStore, links: ItemLinks
    ) -> None:
        self._listings = listings
        self._items = items
        self._links = links

    async def reconcile(self, staff_id: str, *, end_after: datetime) -> ListingRepair:
        """Record every item of the staff member's listings that ends after `end_after`, and
        withdraw what a complete listing no longer shows."""
        started = datetime.now(UTC)
        repair = ListingRepair()
        listed: set[str] = set()
        appointments = await self._listings.appointments(staff_id, end_after=end_after)
        absences = await self._listings.unavailabilities(staff_id, end_after=end_after)
        resources: list[Appointment | Unavailability] = [*appointments, *absences]
        for resource in resources:
            delivery = _as_delivery(resource)
            listed.add(delivery_key(delivery) or "")
            result = await self._items.record(delivery)
            if result.outcome == "accepted":
                repair.created += result.new
                repair.updated += not result.new
                repair.staff_to_sync |= result.staff_ids
        await self._withdraw_unlisted(staff_id, listed, end_after, started, repair)
        return repair

    async def _withdraw_unlisted(
        self,
        staff_id: str,
        listed: set[str],
        end_after: datetime,
        started: datetime,
        repair: ListingRepair,
    ) -> None:
        rows = await self._links.current(staff_id, end_after)
        held = await self._items.load(r.item_key for r in rows if r.item_key not in listed)
        missing = {
            key
            for key, item in held.items()
            if item is not None
            and not item.deleted
            and staff_id in item.staff_ids
            and item.resource is not None
            # Ended before the window: only out of the listing, not gone.
            and item.resource.end > end_after
        }
        if missing:
            # A change while the pages were read can shift an unchanged item out of them:
            # what a second complete listing shows is not gone.
            missing -= await self._listed_keys(staff_id, end_after)
        for key in sorted(missing):
            if await self._items.withdraw(key, staff_id, listed_since=started):
                repair.removed += 1
                repair.staff_to_sync.add(staff_id)

    async def _listed_keys(self, staff_id: str, end_after: datetime) -> set[str]:
        appointments = await self._listings.appointments(staff_id, end_after=end_after)
        absences = await self._listings.unavailabilities(staff_id, end_after=end_after)
        resources: list[Appointment | Unavailability] = [*appointments, *absences]
        return {delivery_key(_as_delivery(resource)) or "" for resource in resources}
