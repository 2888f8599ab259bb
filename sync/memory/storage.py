"""Table and Queue Storage in memory: the item table, the item links, the staff records and the
work queue, with Table Storage's ETag rules (every write makes a new ETag; a conditional write
against an old one fails)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sync.desired_state import DesiredItem, readable_part
from sync.errors import ConcurrentUpdate, ContentUnreadable
from sync.export.planning import EventLink
from sync.memory.faults import Faults
from sync.ports import NO_END, ItemFailure, LinkSave, StaffItemRow, StoredItem
from sync.staff_record import Roster, StaffChanges, StaffRecord
from sync.work import (
    QueuedWork,
    StaffSyncRequest,
    SyncReason,
    fan_out,
    unpacked,
)

STORAGE = "storage"


class _Etags:
    def __init__(self) -> None:
        self._next = itertools.count(1)

    def new(self) -> str:
        return f'W/"{next(self._next)}"'


class MemoryItemTable:
    """`sync.ports.ItemTable`. Content is kept as it is (nothing to protect in memory);
    `make_unreadable` stands for a row the production adapter cannot decrypt."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._faults = faults or Faults()
        self._etags = _Etags()
        self.items: dict[str, tuple[DesiredItem, str]] = {}
        self.unreadable: set[str] = set()

    def make_unreadable(self, key: str) -> None:
        """Reading the item's content now fails as under a wrong data key."""
        self.unreadable.add(key)

    async def read(
        self, key: str, *, with_content: bool = True
    ) -> tuple[DesiredItem | None, str | None]:
        self._faults.check(STORAGE)
        stored = self.items.get(key)
        if stored is None:
            return None, None
        item, etag = stored
        if not with_content:
            return readable_part(item), etag
        if key in self.unreadable and item.has_content:
            raise ContentUnreadable(key, "does not authenticate under key memory")
        return item, etag

    async def swap(self, item: DesiredItem, etag: str | None) -> bool:
        self._faults.check(STORAGE)
        current = self.items.get(item.key)
        if (current is None) != (etag is None) or (current is not None and current[1] != etag):
            return False
        self.items[item.key] = (item, self._etags.new())
        self.unreadable.discard(item.key)  # written anew under the current key
        return True

    async def scan(
        self, *, ended_before: datetime | None = None, deleted_before: datetime | None = None
    ) -> list[StoredItem]:
        self._faults.check(STORAGE)

        def wanted(item: DesiredItem) -> bool:
            if ended_before is None and deleted_before is None:
                return True
            ends_at = item.ends_at
            if ended_before is not None and ends_at is not None and ends_at < ended_before:
                return True
            return (
                deleted_before is not None
                and item.deleted
                and item.recorded_at is not None
                and item.recorded_at < deleted_before
            )

        return [
            StoredItem(readable_part(item), etag, item.has_content)
            for item, etag in self.items.values()
            if wanted(item)
        ]

    async def remove(self, key: str, etag: str) -> bool:
        self._faults.check(STORAGE)
        current = self.items.get(key)
        if current is None:
            return True
        if current[1] != etag:
            return False
        del self.items[key]
        return True


@dataclass
class _LinkRow:
    link: EventLink
    pending: bool
    etag: str
    failure: ItemFailure | None = None
    ends: datetime | None = None  # None: unknown, in every bounded read
    pending_since: datetime | None = None


def _waiting(row: _LinkRow) -> bool:
    return row.pending or row.link.pending_create


class MemoryItemLinks:
    """`sync.ports.ItemLinks`, with the same compare-and-swap rules as the `staffitems` table."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._faults = faults or Faults()
        self._etags = _Etags()
        self.partitions: dict[str, dict[str, _LinkRow]] = {}

    async def mark_pending(
        self, staff_ids: Iterable[str], item_key: str, *, ends: datetime | None = None
    ) -> None:
        for staff_id in sorted(set(staff_ids)):
            self._faults.check(STORAGE)
            rows = self.partitions.setdefault(staff_id, {})
            row = rows.get(item_key)
            now = datetime.now(UTC)
            if row is None:
                link = EventLink(item_key=item_key)
                rows[item_key] = _LinkRow(
                    link, True, self._etags.new(), ends=ends, pending_since=now
                )
            else:
                row.pending, row.etag, row.ends = True, self._etags.new(), ends
                row.pending_since = now

    async def rows(self, staff_id: str) -> list[StaffItemRow]:
        return self._select(staff_id, lambda _row: True)

    async def pending(self, staff_id: str) -> list[StaffItemRow]:
        return self._select(staff_id, _waiting)

    async def current(self, staff_id: str, ending_after: datetime) -> list[StaffItemRow]:
        return self._select(
            staff_id, lambda r: r.ends is None or r.ends > ending_after or _waiting(r)
        )

    async def with_events(self, staff_id: str, event_ids: Iterable[str]) -> list[StaffItemRow]:
        wanted = set(event_ids)
        return self._select(staff_id, lambda r: r.link.event_id in wanted)

    async def since_round(
        self, staff_id: str, round_mark: str, ending_after: datetime
    ) -> list[StaffItemRow]:
        def wanted(row: _LinkRow) -> bool:
            in_window = row.ends is None or row.ends > ending_after
            return (row.link.written_after == round_mark and in_window) or _waiting(row)

        return self._select(staff_id, wanted)

    async def failing(self, staff_id: str) -> list[StaffItemRow]:
        return self._select(staff_id, lambda r: r.failure is not None)

    def _select(self, staff_id: str, wanted: Callable[[_LinkRow], bool]) -> list[StaffItemRow]:
        self._faults.check(STORAGE)
        return [
            StaffItemRow(
                staff_id,
                row.link,
                row.pending,
                row.etag,
                failure=row.failure,
                pending_since=row.pending_since if row.pending else None,
                ends=row.ends,
            )
            for row in self.partitions.get(staff_id, {}).values()
            if wanted(row)
        ]

    async def save_link(self, row: StaffItemRow, link: EventLink, *, done: bool) -> StaffItemRow:
        self._faults.check(STORAGE)
        return self._save(row, link, done=done)

    async def save_links(self, saves: Sequence[LinkSave]) -> list[StaffItemRow]:
        if not saves:
            return []
        self._faults.check(STORAGE)  # one request (a transaction): all written or none
        return [self._save(save.row, save.link, done=save.done) for save in saves]

    def _save(self, row: StaffItemRow, link: EventLink, *, done: bool) -> StaffItemRow:
        rows = self.partitions.setdefault(row.staff_id, {})
        current = rows.get(link.item_key)
        failure = None if done or current is None else current.failure
        if not row.keep_pending and current is not None and current.etag == row.etag:
            written = replace(
                current,
                link=link,
                pending=current.pending and not done,
                etag=self._etags.new(),
                failure=failure,
            )
            rows[link.item_key] = written
            return StaffItemRow(row.staff_id, link, row.pending and not done, written.etag)
        # Changed since read (a newer delivery): write the link, never clear the mark.
        pending = current.pending if current is not None else False
        ends = current.ends if current is not None else NO_END
        kept = _LinkRow(link, pending, self._etags.new(), failure, ends)
        rows[link.item_key] = kept
        return StaffItemRow(row.staff_id, link, True, kept.etag, keep_pending=True)

    async def record_failure(self, row: StaffItemRow, failure: ItemFailure) -> None:
        self._faults.check(STORAGE)
        rows = self.partitions.setdefault(row.staff_id, {})
        current = rows.get(row.item_key)
        # A row deleted meanwhile comes back bare, as a merge into Table Storage writes it.
        link = current.link if current is not None else EventLink(item_key=row.item_key)
        ends = current.ends if current is not None else NO_END
        rows[row.item_key] = _LinkRow(link, True, self._etags.new(), failure, ends)

    async def forget(self, row: StaffItemRow) -> bool:
        self._faults.check(STORAGE)
        if row.keep_pending:
            return False
        rows = self.partitions.get(row.staff_id, {})
        current = rows.get(row.item_key)
        if current is None:
            return True
        if current.etag != row.etag:
            return False
        del rows[row.item_key]
        return True

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass for failing items' retry times (see `MemoryStaffStore.advance`)."""
        step = timedelta(seconds=seconds)
        for rows in self.partitions.values():
            for row in rows.values():
                if row.failure is not None:
                    row.failure = replace(row.failure, retry_at=row.failure.retry_at - step)
                if row.pending and row.pending_since is not None:
                    row.pending_since -= step

    async def row(self, staff_id: str, item_key: str) -> StaffItemRow | None:
        self._faults.check(STORAGE)
        row = self.partitions.get(staff_id, {}).get(item_key)
        if row is None:
            return None
        return StaffItemRow(
            staff_id, row.link, row.pending, row.etag, failure=row.failure, ends=row.ends
        )

    async def pending_by_staff(self) -> Counter[str]:
        self._faults.check(STORAGE)
        return Counter(
            staff_id
            for staff_id, rows in self.partitions.items()
            for row in rows.values()
            if row.pending or row.link.pending_create
        )


class MemoryStaffStore:
    """`sync.ports.StaffStore`."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._faults = faults or Faults()
        self._etags = _Etags()
        self.records: dict[str, StaffRecord] = {}

    async def get(self, staff_id: str) -> StaffRecord | None:
        self._faults.check(STORAGE)
        return self.records.get(staff_id)

    async def all(self) -> list[StaffRecord]:
        self._faults.check(STORAGE)
        return list(self.records.values())

    async def create(self, staff_id: str, changes: StaffChanges) -> StaffRecord:
        self._faults.check(STORAGE)
        if staff_id in self.records:
            raise ConcurrentUpdate(f"staff record {staff_id} exists already")
        record = StaffRecord(staff_id=staff_id).with_changes(changes, self._etags.new())
        self.records[staff_id] = record
        return record

    async def merge(
        self, staff_id: str, changes: StaffChanges, *, if_match: str | None = None
    ) -> str:
        self._faults.check(STORAGE)
        current = self.records.get(staff_id)
        if if_match is not None and (current is None or current.etag != if_match):
            raise ConcurrentUpdate(f"staff record {staff_id} changed meanwhile")
        base = current if current is not None else StaffRecord(staff_id=staff_id)
        record = base.with_changes(changes, self._etags.new())
        self.records[staff_id] = record
        return record.etag

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass for the records' deadlines (lease ends, throttling, wake-ups):
        the state machine's clock, which the service itself reads from the system."""
        step = timedelta(seconds=seconds)

        def earlier(moment: datetime | None) -> datetime | None:
            return None if moment is None else moment - step

        for staff_id, record in self.records.items():
            self.records[staff_id] = record.model_copy(
                update={
                    "lease": record.lease.model_copy(update={"until": earlier(record.lease.until)}),
                    "rerun": record.rerun.model_copy(
                        update={"wakeup_at": earlier(record.rerun.wakeup_at)}
                    ),
                    "outcome": record.outcome.model_copy(
                        update={"throttled_until": earlier(record.outcome.throttled_until)}
                    ),
                }
            )


@dataclass(frozen=True)
class QueuedRequest:
    work: QueuedWork
    delay_seconds: float

    @property
    def request(self) -> StaffSyncRequest:
        """The message's one request (for a message known not to be a batch)."""
        if not isinstance(self.work, StaffSyncRequest):
            raise TypeError("a batch message: read `work`, or MemoryQueue.requests()")
        return self.work


@dataclass
class MemoryQueue:
    """`sync.ports.WorkQueue`: messages in the order sent, each with the delay it asked for.
    The timer's batches are kept as batches, as on Queue Storage."""

    faults: Faults = field(default_factory=Faults)
    messages: list[QueuedRequest] = field(default_factory=list)

    async def send(self, request: StaffSyncRequest, *, delay_seconds: float = 0) -> None:
        self._put(request, delay_seconds)

    async def request_sync(
        self, staff_ids: Iterable[str], reason: SyncReason, *, full: bool = False
    ) -> None:
        for staff_id in sorted(set(staff_ids)):
            await self.send(StaffSyncRequest(staff_id=staff_id, reason=reason, full=full))

    async def request_sync_spread(
        self,
        staff_ids: Iterable[str],
        reason: SyncReason,
        *,
        spread_seconds: float,
        rosters: Mapping[str, Roster] | None = None,
        per_message: int = 1,
    ) -> None:
        work = fan_out(staff_ids, reason, rosters, per_message=per_message)
        step = spread_seconds / len(work) if work else 0.0
        for index, message in enumerate(work):
            self._put(message, index * step)

    def put_back(self, work: QueuedWork) -> None:
        """A message that comes back whole (its worker died before deleting it)."""
        self._put(work, 0.0)

    def requests(self) -> list[StaffSyncRequest]:
        """Every staff member's request on the queue, batches unpacked (for a test to read)."""
        return [r for m in self.messages for r in unpacked(m.work)]

    def _put(self, work: QueuedWork, delay_seconds: float) -> None:
        self.faults.check(STORAGE)
        self.messages.append(QueuedRequest(work, max(0.0, delay_seconds)))

    def take(self, index: int = 0) -> QueuedWork:
        """Receive one message (the first, or the one at `index`), whatever its delay."""
        return self.messages.pop(index).work

    def take_request(self, index: int = 0) -> StaffSyncRequest:
        """Receive one message known to hold a single request."""
        work = self.take(index)
        if not isinstance(work, StaffSyncRequest):
            raise TypeError("a batch message: use take()")
        return work
