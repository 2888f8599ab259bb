"""Recording what Coconut says an item should be: the durable step before a webhook's 202.

`record` reads the item, decides with the pure rule (`sync.desired_state.decide`: highest
revision wins, a deletion is final), and commits by compare-and-swap, deciding again when another
delivery of the same item got there first. A creation skips the read: it is decided as a first
record and inserted, and reads and decides again only if the insert finds a record (one storage
round trip fewer for a burst of new bookings). Every staff member to reconcile is marked pending
before the commit (a crash in between loses nothing: Coconut's retry is a duplicate, which marks
again) and, when the commit replaced a record, after it too: no run can then clear a mark without
having seen the committed state. A first record needs no second mark: a run that reads the row
before the record exists leaves a fresh mark alone (`awaits_its_record`), and one that reads the
record after the commit writes what was committed.

Deciding reads only the record's readable columns (revision, flags, staff ids): a delivery is
recorded without decrypting anything, so a row whose content cannot be decrypted (a wrong or
rotated data key) is still replaced by a newer revision, which carries all its content itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sync.coconut.webhook_models import CREATION_TYPES, Delivery
from sync.concurrency import all_settled
from sync.desired_state import DesiredItem, Outcome, decide, delivery_key, withdraw
from sync.errors import StorageUnavailable
from sync.ports import ItemLinks, ItemTable, StaffItemRow

MAX_CAS_ATTEMPTS: Final = 20
# Longest time from a delivery's first mark to its commit: an invocation that has not committed
# by then never will (host.json `functionTimeout`, which a test holds this to).
MARK_TO_COMMIT: Final = timedelta(minutes=10)
# Item records loaded at once; point reads are cheap, but not free.
LOAD_CONCURRENCY: Final = 16


@dataclass(frozen=True)
class RecordResult:
    outcome: Outcome
    # Staff members whose calendars must be reconciled because of this delivery.
    staff_ids: frozenset[str]
    # Whether the service knew nothing of the item before (an accepted first record).
    new: bool = False


class DesiredItemStore:
    def __init__(self, table: ItemTable, links: ItemLinks) -> None:
        self._table = table
        self._links = links

    async def get(self, key: str) -> DesiredItem | None:
        item, _ = await self._table.read(key)
        return item

    async def load(self, keys: Iterable[str]) -> dict[str, DesiredItem | None]:
        """Several items at once (absent ones as None)."""
        slots = asyncio.Semaphore(LOAD_CONCURRENCY)

        async def load(key: str) -> tuple[str, DesiredItem | None]:
            async with slots:
                return key, await self.get(key)

        return dict(await all_settled(load(key) for key in keys))

    async def record(self, delivery: Delivery) -> RecordResult:
        """Record a delivery's effect on its item; who to reconcile because of it."""
        key = delivery_key(delivery)
        if key is None:
            return RecordResult("ignored", frozenset())
        # A creation is almost always the item's first delivery: try it as a first record (an
        # insert, which fails if a record exists) before reading anything.
        guessed_new = delivery.event_type in CREATION_TYPES
        # Staff marked by an attempt whose commit failed: their rows say when *that* attempt's
        # item ended, which the outcome may not have kept.
        marked: frozenset[str] = frozenset()
        for _ in range(MAX_CAS_ATTEMPTS):
            if guessed_new:
                recorded, etag = None, None
            else:
                recorded, etag = await self._table.read(key, with_content=False)
            decision = decide(recorded, delivery)
            if decision.outcome != "accepted" or decision.record is None:
                remark = decision.reconcile_staff | (marked if recorded is not None else set())
                if remark:
                    ends = recorded.ends_at if recorded is not None else None
                    await self._links.mark_pending(remark, key, ends=ends)
                return RecordResult(decision.outcome, decision.reconcile_staff)
            record = decision.record.model_copy(update={"recorded_at": datetime.now(UTC)})
            if not await self._commit(record, etag, decision.reconcile_staff):
                # Another delivery of this item got there first, or the item was not new after
                # all: read and decide again.
                guessed_new = False
                marked |= decision.reconcile_staff
                continue
            return RecordResult("accepted", decision.reconcile_staff, new=recorded is None)
        raise StorageUnavailable(f"too much contention recording {key}")

    async def withdraw(self, key: str, staff_id: str, *, listed_since: datetime) -> bool:
        """Take the item out of `staff_id`'s calendar because a complete listing that began
        at `listed_since` no longer showed it; False when there was nothing to withdraw or a
        webhook recorded the item after the listing began (the listing raced it)."""
        for _ in range(MAX_CAS_ATTEMPTS):
            recorded, etag = await self._table.read(key)
            if recorded is None:
                return False
            if recorded.recorded_at is not None and recorded.recorded_at >= listed_since:
                return False
            withdrawn = withdraw(recorded, staff_id)
            if withdrawn is None:
                return False
            # `recorded_at` stays: it says when Coconut's latest delivery was recorded, which
            # is what a listing races (and what a tombstone's horizon counts from). Bumped
            # here, another staff member's repair listing the same item from before this
            # withdrawal would take it for a webhook and leave the item in their calendar.
            if await self._commit(withdrawn, etag, frozenset({staff_id})):
                return True
        raise StorageUnavailable(f"too much contention withdrawing {key}")

    async def _commit(self, record: DesiredItem, etag: str | None, staff: frozenset[str]) -> bool:
        """Swap the record in, marking the staff to reconcile before and after the commit."""
        await self._links.mark_pending(staff, record.key, ends=record.ends_at)
        if not await self._table.swap(record, etag):
            return False
        if etag is not None:
            # Marked again after the commit: a run that saw the first mark but read the older
            # record before this commit cannot then clear the mark (its ETag swap fails).
            await self._links.mark_pending(staff, record.key, ends=record.ends_at)
        return True


def awaits_its_record(row: StaffItemRow, item: DesiredItem | None, now: datetime) -> bool:
    """A row a delivery marked moments ago for an item with no record yet: the delivery is
    between its mark and its commit (see the module docstring), so a run must leave the mark
    for the run its commit asks for. Past `MARK_TO_COMMIT` the commit will not come."""
    return (
        item is None
        and row.pending
        and row.link.event_id is None
        and not row.link.pending_create
        and row.pending_since is not None
        and now - row.pending_since < MARK_TO_COMMIT
    )
