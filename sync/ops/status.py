"""The administrator's view of the sync: each staff member's status, reason and pending work,
and the counts by status (what Coconut's "Users" tab shows).

`summarize` and `count_by_status` are pure; `StatusView` reads the `staff` and `staffitems`
tables. Staff appear by Coconut id; the detail view adds the staff member's own mailbox
identifiers (their work e-mail, Graph user id, time zone), never anything about customers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict

from sync.names import STAFF_ITEMS_TABLE
from sync.ops.errors import UnknownStaff
from sync.storage.account import StorageAccount, guarded
from sync.storage.keys import from_table_key
from sync.storage.staff_items import StaffItemStore
from sync.storage.staff_records import StaffRecord, StaffRecords

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
    items: int
    pending_items: list[str]


class StaffOverview(BaseModel):
    counts: dict[str, int]
    total: int
    staff: list[StaffSummary]


def effective_status(fields: Mapping[str, Any]) -> Status:
    """The status an administrator should see, from the record's fields."""
    recorded = fields.get("Status") or ""
    if fields.get("Disconnected"):
        return "Disconnected" if recorded == "Disconnected" else "Disconnecting"
    if fields.get("CalendarSync") is False:
        return "Disabled"  # switched off in Coconut: the worker no longer runs for them
    return _RECORDED.get(str(recorded), "Pending")


def _when(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _lease(fields: Mapping[str, Any], now: datetime) -> datetime | None:
    until = _when(fields.get("LeaseUntil"))
    return until if fields.get("LeaseOwner") and until is not None and until > now else None


def summarize(record: StaffRecord, pending: int, now: datetime) -> StaffSummary:
    fields = record.fields
    return StaffSummary(
        staff_id=record.staff_id,
        status=effective_status(fields),
        reason=str(fields.get("Reason") or ""),
        status_at=_when(fields.get("StatusAt")),
        last_sync_at=_when(fields.get("LastSyncAt")),
        pending=pending,
        events=int(fields.get("EventCount") or 0),
        leased_until=_lease(fields, now),
    )


def count_by_status(summaries: Iterable[StaffSummary]) -> dict[str, int]:
    """Staff per status, every status present (a zero clears an alert)."""
    counted = Counter(summary.status for summary in summaries)
    return {status: counted.get(status, 0) for status in STATUSES}


class StatusView:
    def __init__(
        self, account: StorageAccount, records: StaffRecords, staff_items: StaffItemStore
    ) -> None:
        self._staff_items_table = account.table(STAFF_ITEMS_TABLE)
        self._records = records
        self._staff_items = staff_items

    async def overview(self, status: Status | None = None) -> StaffOverview:
        now = datetime.now(UTC)
        pending = await self._pending_by_staff()
        summaries = sorted(
            (summarize(r, pending.get(r.staff_id, 0), now) for r in await self._records.all()),
            key=lambda s: s.staff_id,
        )
        counts = count_by_status(summaries)
        shown = [s for s in summaries if status is None or s.status == status]
        return StaffOverview(counts=counts, total=len(summaries), staff=shown)

    async def detail(self, staff_id: str) -> StaffDetail:
        record = await self._records.get(staff_id)
        if record is None:
            raise UnknownStaff(staff_id)
        rows = await self._staff_items.rows(staff_id)
        waiting = sorted(r.item_key for r in rows if r.pending or r.link.pending_create)
        summary = summarize(record, len(waiting), datetime.now(UTC))
        fields = record.fields
        return StaffDetail(
            **summary.model_dump(),
            email=str(fields.get("Email") or ""),
            user_id=str(fields.get("UserId") or ""),
            time_zone=str(fields.get("TimeZone") or ""),
            calendar_sync=fields.get("CalendarSync") is not False,
            initialised_at=_when(fields.get("InitialisedAt")),
            last_import_at=_when(fields.get("LastImportAt")),
            subscription_expires_at=(
                _when(fields.get("SubscriptionExpiresAt")) if fields.get("SubscriptionId") else None
            ),
            subscription_error=str(fields.get("SubscriptionError") or ""),
            disconnected_at=(
                _when(fields.get("DisconnectedAt")) if fields.get("Disconnected") else None
            ),
            items=len(rows),
            pending_items=waiting[:PENDING_SHOWN],
        )

    async def counts(self) -> dict[str, int]:
        """Staff per status from the staff records alone (the timer's gauge: no scan of the
        link rows)."""
        now = datetime.now(UTC)
        return count_by_status(summarize(r, 0, now) for r in await self._records.all())

    async def _pending_by_staff(self) -> Counter[str]:
        """Rows waiting for a reconcile, per staff member: one scan of the pending rows only."""
        query = self._staff_items_table.query_entities(
            "Pending eq true or PendingCreate eq true", select=["PartitionKey"]
        )

        async def collect() -> Counter[str]:
            return Counter([from_table_key(entity["PartitionKey"]) async for entity in query])

        return await guarded(collect)
