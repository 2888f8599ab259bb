"""The administrator's view of the sync: each staff member's status, reason and pending work,
and the counts by status (what Coconut's "Users" tab shows).

`summarize` and `count_by_status` are pure; `StatusView` reads the staff records and the item
links. Staff appear by Coconut id; the detail view adds the staff member's own mailbox
identifiers (their work e-mail, Graph user id, time zone), never anything about customers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict

from sync.ops.errors import UnknownStaff
from sync.ports import ItemLinks, StaffStore
from sync.staff_record import StaffRecord

# What the worker records (Syncing, Warning, Error, Disabled, Disconnected), plus "Pending" (never
# synced yet, or queued after a reconnect) and "Disconnecting" (requested, not yet done).
Status = Literal[
    "Syncing", "Warning", "Error", "Disabled", "Disconnecting", "Disconnected", "Pending"
]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
# Recorded statuses shown as they are ("Disconnected" only together with the flag).
_RECORDED: Final[dict[str, Status]] = {
    "Syncing": "Syncing",
    "Warning": "Warning",
    "Error": "Error",
    "Disabled": "Disabled",
}
# The detail view lists at most this many pending Coconut ids.
PENDING_SHOWN: Final = 50


class StaffSummary(BaseModel):
    """One row of the staff list."""

    model_config = ConfigDict(frozen=True)

    staff_id: str
    status: Status
    reason: str
    status_at: datetime | None
    last_sync_at: datetime | None
    pending: int
    events: int
    leased_until: datetime | None


class StaffDetail(StaffSummary):
    email: str
    user_id: str
    time_zone: str
    calendar_sync: bool
    initialised_at: datetime | None
    last_import_at: datetime | None
    subscription_expires_at: datetime | None
    subscription_error: str
    disconnected_at: datetime | None
    # Coconut's listings: when last read, and what the last scheduled repair mended.
    listed_at: datetime | None
    repaired_at: datetime | None
    repaired_created: int
    repaired_updated: int
    repaired_removed: int
    items: int
    pending_items: list[str]


class StaffOverview(BaseModel):
    counts: dict[str, int]
    total: int
    staff: list[StaffSummary]


def effective_status(record: StaffRecord) -> Status:
    """The status an administrator should see, from the record."""
    recorded = record.outcome.status
    if record.connection.disconnected:
        return "Disconnected" if recorded == "Disconnected" else "Disconnecting"
    if record.roster.calendar_sync is False:
        return "Disabled"  # switched off in Coconut: the worker no longer runs for them
    return _RECORDED.get(recorded, "Pending")


def _lease(record: StaffRecord, now: datetime) -> datetime | None:
    until = record.lease.until
    return until if record.lease.owner and until is not None and until > now else None


def summarize(record: StaffRecord, pending: int, now: datetime) -> StaffSummary:
    return StaffSummary(
        staff_id=record.staff_id,
        status=effective_status(record),
        reason=record.outcome.reason,
        status_at=record.outcome.at,
        last_sync_at=record.outcome.last_sync_at,
        pending=pending,
        events=record.outcome.event_count,
        leased_until=_lease(record, now),
    )


def count_by_status(summaries: Iterable[StaffSummary]) -> dict[str, int]:
    """Staff per status, every status present (a zero clears an alert)."""
    counted = Counter(summary.status for summary in summaries)
    return {status: counted.get(status, 0) for status in STATUSES}


class StatusView:
    def __init__(self, staff: StaffStore, links: ItemLinks) -> None:
        self._staff = staff
        self._links = links

    async def overview(self, status: Status | None = None) -> StaffOverview:
        now = datetime.now(UTC)
        pending = await self._links.pending_by_staff()
        summaries = sorted(
            (summarize(r, pending.get(r.staff_id, 0), now) for r in await self._staff.all()),
            key=lambda s: s.staff_id,
        )
        counts = count_by_status(summaries)
        shown = [s for s in summaries if status is None or s.status == status]
        return StaffOverview(counts=counts, total=len(summaries), staff=shown)

    async def detail(self, staff_id: str) -> StaffDetail:
        record = await self._staff.get(staff_id)
        if record is None:
            raise UnknownStaff(staff_id)
        rows = await self._links.rows(staff_id)
        waiting = sorted(r.item_key for r in rows if r.pending or r.link.pending_create)
        summary = summarize(record, len(waiting), datetime.now(UTC))
        subscription = record.subscription
        connection = record.connection
        return StaffDetail(
            **summary.model_dump(),
            email=record.roster.email,
            user_id=record.mailbox.user_id,
            time_zone=record.mailbox.time_zone,
            calendar_sync=record.roster.calendar_sync is not False,
            initialised_at=record.cursor.initialised_at,
            last_import_at=record.cursor.last_import_at,
            subscription_expires_at=subscription.expires_at if subscription.id else None,
            subscription_error=subscription.error,
            disconnected_at=connection.disconnected_at if connection.disconnected else None,
            listed_at=record.listing.listed_at,
            repaired_at=record.listing.repaired_at,
            repaired_created=record.listing.created,
            repaired_updated=record.listing.updated,
            repaired_removed=record.listing.removed,
            items=len(rows),
            pending_items=waiting[:PENDING_SHOWN],
        )

    async def counts(self) -> dict[str, int]:
        """Staff per status from the staff records alone (the timer's gauge: no scan of the
        link rows)."""
        now = datetime.now(UTC)
        return count_by_status(summarize(r, 0, now) for r in await self._staff.all())
