"""How long customer content is kept, and when the records themselves go (docs/data-map.md).

The `items` table keeps, per Coconut item, the content its Exchange event is made of
(`sync.kept_content`, encrypted by the table adapter). That content is needed to write the event
and to repair it (Coconut wins over an Outlook edit, a full resync rewrites it). Three rules:

1. Content purge. Once an item has ended, its content goes after the retention period
   (`SYNC_CONTENT_RETENTION_DAYS`, default 30): the record becomes a content-free tombstone
   (kind, id, revision, flags, staff ids, end; `DesiredItem.purged = "retention"`). A later
   change from Coconut needs nothing stored (a delivery carries the whole resource), so what the
   period buys is repair: for a month after an appointment, an Outlook edit or deletion of its
   event is still undone and a resync (after an outage, a failing mailbox, a reconnect) still
   writes it exactly. Thirty days is the span in which such problems are noticed and fixed;
   after it the event in the staff member's calendar is the record of what happened, and it stays
   there as their history: nothing writes or removes it any more (`leaves_events_alone`).

2. Tombstones. A tombstone exists so that nothing older than what was recorded brings the item
   back. It goes once nothing can:
   - Webhooks. Coconut retries a delivery for up to 24 hours after the change it reports. A
     delivery with a revision at or below the recorded one reports a change Coconut made before
     the recorded revision reached this table (`recorded_at`), so none arrives after
     `recorded_at` + 24 hours. Tombstones are kept `TOMBSTONE_HORIZON` (7 days) after
     `recorded_at`: the margin covers clocks, a delivery held up on either side, and costs
     nothing since a tombstone holds no content. A *newer* revision is a real change and is
     recorded with or without a tombstone.
   - Listings. The reconcile and the onboarding read ask Coconut for the items ending after
     `filter[end_after]`, which must never lie further back than the retention period
     (`oldest_listed_end`). A non-deleted tombstone only exists once its item ended more than
     the retention period ago, so no listing can show it again. A deleted item is absent from
     every listing.
   - Deletions. A deleted item's tombstone also stays while any staff member's row still holds
     an event or an unconfirmed create for it: the worker removes those, and without the record
     it would leave them as history.
   So: a purged record goes once it ended more than the retention period ago and was recorded
   more than the horizon ago; a deletion tombstone once it was recorded more than the horizon
   ago and no event of it is left.

3. Disconnect. A disconnected staff member's items lose their content at once
   (`purged = "disconnect"`), unless another staff member who is still synced shares them. A
   reconnect reads Coconut's listings (contracts/coconut-api.md), whose same revision brings
   the content back (`sync.desired_state`). Content recorded for them after the disconnect is
   kept (encrypted) until its retention ends or they are reconnected.

`ContentRetention.run` is the periodic step (the timer runs it after its cycle); it reads only
the candidates' readable columns and never decrypts anything.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from sync.concurrency import all_settled
from sync.desired_state import DesiredItem, without_content
from sync.ports import ItemLinks, ItemTable, StaffStore, StoredItem
from sync.settings import DEFAULT_CONTENT_RETENTION_DAYS

log = logging.getLogger("sync.retention")

# Content is kept this long after its item ended, unless SYNC_CONTENT_RETENTION_DAYS says.
DEFAULT_RETENTION: Final = timedelta(days=DEFAULT_CONTENT_RETENTION_DAYS)
# Coconut retries a webhook for up to 24 hours; a tombstone outlives its record by this much.
TOMBSTONE_HORIZON: Final = timedelta(days=7)
# Records written or removed at once.
CONCURRENCY: Final = 16

RetentionStep = Literal["keep", "purge", "forget"]


def oldest_listed_end(now: datetime, retention: timedelta) -> datetime:
    """The earliest `filter[end_after]` a Coconut listing may ask for: a listing reaching
    further back would bring back content the retention has purged."""
    return now - retention


def retention_step(stored: StoredItem, now: datetime, retention: timedelta) -> RetentionStep:
    """What the retention does with one record now (the module docstring says why)."""
    item = stored.item
    ended = item.ends_at is not None and item.ends_at + retention < now
    settled = item.recorded_at is not None and item.recorded_at + TOMBSTONE_HORIZON < now
    if stored.has_content:
        return "purge" if ended else "keep"
    if item.deleted:
        return "forget" if settled else "keep"
    if item.purged is not None:
        return "forget" if ended and settled else "keep"
    return "keep"


@dataclass(frozen=True)
class RetentionOutcome:
    purged: int = 0
    forgotten: int = 0


class ContentRetention:
    def __init__(
        self, table: ItemTable, links: ItemLinks, staff: StaffStore, retention: timedelta
    ) -> None:
        self._table = table
        self._links = links
        self._staff = staff
        self._retention = retention

    @property
    def retention(self) -> timedelta:
        return self._retention

    async def run(self, now: datetime | None = None) -> RetentionOutcome:
        """Purge the content of items past retention; remove tombstones past the horizon."""
        now = now or datetime.now(UTC)
        candidates = await self._table.scan(
            ended_before=now - self._retention, deleted_before=now - TOMBSTONE_HORIZON
        )
        slots = asyncio.Semaphore(CONCURRENCY)

        async def apply(stored: StoredItem) -> RetentionStep:
            async with slots:
                return await self._apply(stored, retention_step(stored, now, self._retention))

        steps = await all_settled(apply(stored) for stored in candidates)
        outcome = RetentionOutcome(steps.count("purge"), steps.count("forget"))
        log.info(
            "content retention",
            extra={
                "operation": "retention",
                "outcome": "ok",
                "purged": outcome.purged,
                "forgotten": outcome.forgotten,
            },
        )
        return outcome

    async def withhold_for(self, staff_id: str) -> int:
        """Purge the content of the items assigned to a disconnected staff member that no
        synced staff member shares; how many."""
        rows = await self._links.rows(staff_id)
        slots = asyncio.Semaphore(CONCURRENCY)

        async def withhold(key: str) -> bool:
            async with slots:
                item, etag = await self._table.read(key, with_content=False)
                if item is None or etag is None or item.deleted or item.purged is not None:
                    return False
                if staff_id not in item.staff_ids or await self._needed_elsewhere(item, staff_id):
                    return False
                # A lost swap means a newer revision landed: it is kept like any other.
                return await self._table.swap(without_content(item, "disconnect"), etag)

        done = await all_settled(withhold(row.item_key) for row in rows)
        withheld = sum(done)
        log.info(
            "content withheld after a disconnect",
            extra={"operation": "retention", "staff_id": staff_id, "withheld": withheld},
        )
        return withheld

    async def _apply(self, stored: StoredItem, step: RetentionStep) -> RetentionStep:
        key = stored.item.key
        if step == "purge":
            purged = without_content(stored.item, "retention")
            return "purge" if await self._table.swap(purged, stored.etag) else "keep"
        if step == "forget":
            if stored.item.deleted and await self._has_events(stored.item):
                return "keep"
            return "forget" if await self._table.remove(key, stored.etag) else "keep"
        return "keep"

    async def _has_events(self, item: DesiredItem) -> bool:
        """Whether a staff row still holds an event (or an unconfirmed create) for the item."""
        for staff_id in sorted(item.staff_ids | item.previous_staff_ids):
            row = await self._links.row(staff_id, item.key)
            if row is not None and (row.link.event_id or row.link.pending_create):
                return True
        return False

    async def _needed_elsewhere(self, item: DesiredItem, staff_id: str) -> bool:
        """Another staff member of the item is (or may yet be) synced."""
        for other in sorted(item.staff_ids - {staff_id}):
            record = await self._staff.get(other)
            if record is None or not record.connection.disconnected:
                return True
        return False
