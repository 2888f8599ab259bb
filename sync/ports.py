"""What the sync talks to, as small protocols: the worker, the importer, the cycle and the ops
commands take these, never a concrete adapter.

| port                  | real adapter                         | in-memory (`sync.memory`) |
| --------------------- | ------------------------------------ | ------------------------- |
| `MailboxCalendar`     | `sync.graph.calendar.GraphCalendar`  | `MemoryCalendar`          |
| `ChangeSubscriptions` | `sync.notifications.subscriptions`   | (none: optional)          |
| `ItemTable`           | `sync.storage.item_table`            | `MemoryItemTable`         |
| `ItemLinks`           | `sync.storage.item_links`            | `MemoryItemLinks`         |
| `StaffStore`          | `sync.storage.staff_table`           | `MemoryStaffStore`        |
| `WorkQueue`           | `sync.storage.work_queue`            | `MemoryQueue`             |
| `CoconutBusyTime`     | `sync.coconut.api.CoconutApi`        | `MemoryCoconut`           |
| `CoconutRoster`       | `sync.coconut.api.CoconutApi`        | `MemoryCoconut`           |
| `CoconutListings`     | `sync.coconut.api.CoconutApi`        | `MemoryCoconut`           |

Both kinds pass one contract suite (`tests/contract/`), so they cannot drift apart. Failures are
raised in the vocabulary of `sync.errors`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from sync.coconut.api import CoconutUser
from sync.coconut.webhook_models import Appointment, Unavailability
from sync.desired_state import DesiredItem
from sync.export.planning import EventLink
from sync.imports.busy_time import BusyBlock
from sync.staff_record import Roster, StaffChanges, StaffRecord, SubscriptionState
from sync.work import StaffSyncRequest, SyncReason

# ----- Exchange (Graph) ---------------------------------------------------------------------


@dataclass(frozen=True)
class MailboxUser:
    """A staff member's Microsoft 365 user and the time zone their mailbox reports."""

    id: str
    time_zone: str


@dataclass(frozen=True)
class WrittenEvent:
    id: str
    change_key: str | None


@dataclass(frozen=True)
class DeltaPage:
    """One page of `calendarView/delta`: event JSON objects (camelCase, `@removed` kept), and
    either the next page's link or the delta link to keep for the next round."""

    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None


class MailboxCalendar(Protocol):
    """A staff member's Exchange mailbox: the user, and the events in their primary calendar.

    Event bodies are Graph JSON (`EventDraft.to_graph()`). Creates carry a `transactionId` and
    the Coconut-id extended property. `update_event` raises `EventGone` when the event no longer
    exists; `delete_event` counts a gone event as deleted; `calendar_delta` raises
    `DeltaExpired` when Graph forgot the link's state."""

    async def find_user(self, mail: str) -> MailboxUser | None: ...

    async def create_event(
        self, user_id: str, body: dict[str, Any], *, transaction_id: str, coconut_key: str
    ) -> WrittenEvent: ...

    async def update_event(
        self, user_id: str, event_id: str, body: dict[str, Any]
    ) -> WrittenEvent: ...

    async def delete_event(self, user_id: str, event_id: str) -> None: ...

    async def find_events_for(self, user_id: str, coconut_key: str) -> list[WrittenEvent]: ...

    async def find_service_events(self, user_id: str) -> list[WrittenEvent]: ...

    async def change_key_of(self, user_id: str, event_id: str) -> str | None: ...

    async def calendar_delta(
        self,
        user_id: str,
        *,
        link: str | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> DeltaPage: ...


class ChangeSubscriptions(Protocol):
    """Graph change-notification subscriptions on a mailbox's events."""

    async def ensure(
        self,
        staff_id: str,
        user_id: str,
        current: SubscriptionState,
        before_create: Callable[[SubscriptionState], Awaitable[None]] | None = None,
    ) -> SubscriptionState | None:
        """Create or renew when needed: the state to store, or None when nothing changed.
        `before_create` stores the state it is given before a create is sent."""
        ...

    async def remove(self, user_id: str, subscription_id: str) -> None: ...


# ----- Storage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredItem:
    """One record as housekeeping sees it: its readable columns only (no content decrypted)."""

    item: DesiredItem  # without content: `resource` None, `staff_emails` empty
    etag: str
    has_content: bool
    # The content was written under a key other than the current one (or before encryption).
    stale_key: bool = False


class ItemTable(Protocol):
    """The desired state of each Coconut item, written by ETag compare-and-swap.

    The production adapter encrypts the content (`sync.content_cipher`) and raises
    `ContentUnreadable` for content it cannot decrypt; ids, revision, staff ids, times and
    flags are readable columns."""

    async def read(
        self, key: str, *, with_content: bool = True
    ) -> tuple[DesiredItem | None, str | None]:
        """The item and its ETag (None, None when absent). Without content: the readable
        columns only, which is all a decision about a delivery needs (nothing is decrypted)."""
        ...

    async def swap(self, item: DesiredItem, etag: str | None) -> bool:
        """Create (`etag` None) or replace (unchanged since `etag`); False when another writer
        got there first."""
        ...

    async def scan(
        self, *, ended_before: datetime | None = None, deleted_before: datetime | None = None
    ) -> list[StoredItem]:
        """Every record; or, given either bound, those ending before `ended_before` or deleted
        (tombstones recorded before `deleted_before`)."""
        ...

    async def remove(self, key: str, etag: str) -> bool:
        """Delete the record unless it changed since `etag`; whether it is gone."""
        ...


@dataclass(frozen=True)
class ItemFailure:
    """Why one item's event could not be written, since when, and when to try again."""

    count: int
    since: datetime
    reason: str  # status and error codes only, never content
    retry_at: datetime


# The end a row reads with when it has none (a merge brought it back bare): no bounded read
# (`ItemLinks.current`, `ItemLinks.since_round`) returns it, in Table Storage or in memory.
NO_END: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StaffItemRow:
    """One item in one staff member's partition: its link, and whether it waits for a run."""

    staff_id: str
    link: EventLink
    pending: bool
    etag: str
    # Set once a swap found the row changed by a newer delivery: from then on this run may
    # write the link but never clear the pending mark, whatever ETag its own writes return.
    keep_pending: bool = False
    # The item's own failure, while it keeps failing (cleared by the next successful write).
    failure: ItemFailure | None = None
    # When a delivery last marked it pending (None: not known).
    pending_since: datetime | None = None
    # When the item ends, as its deliveries said (None: not known, inside every bounded read;
    # `NO_END` for a row that lost its end, outside every one). Read rows only.
    ends: datetime | None = None

    @property
    def item_key(self) -> str:
        return self.link.item_key

    def due(self, now: datetime) -> bool:
        """Whether a run should work on it now (a failing item waits for its retry time)."""
        return self.failure is None or self.failure.retry_at <= now


@dataclass(frozen=True)
class LinkSave:
    """One `save_link` of a batch (`ItemLinks.save_links`)."""

    row: StaffItemRow
    link: EventLink
    done: bool


class ItemLinks(Protocol):
    """Per staff member, every item that concerns them and the Graph event it maps to.

    A delivery marks a row pending; a run clears the mark by ETag compare-and-swap, so a change
    that lands during the run keeps its row pending for the next one."""

    async def mark_pending(
        self, staff_ids: Iterable[str], item_key: str, *, ends: datetime | None = None
    ) -> None:
        """Mark the item's row pending in each partition; `ends` is when the item ends (None:
        unknown, and the row is then in every bounded read)."""
        ...

    async def rows(self, staff_id: str) -> list[StaffItemRow]:
        """The whole partition: for the rare readers that need every item (disconnect, ops)."""
        ...

    # A pass's reads never grow with the staff member's history (docs/architecture.md):

    async def pending(self, staff_id: str) -> list[StaffItemRow]:
        """The rows waiting for a run (pending, or an unconfirmed create)."""
        ...

    async def current(self, staff_id: str, ending_after: datetime) -> list[StaffItemRow]:
        """The rows of items that end after `ending_after`, and every row waiting for a run."""
        ...

    async def with_events(self, staff_id: str, event_ids: Iterable[str]) -> list[StaffItemRow]:
        """The rows whose link names one of these Graph events."""
        ...

    async def since_round(
        self, staff_id: str, round_mark: str, ending_after: datetime
    ) -> list[StaffItemRow]:
        """The rows of the items that end after `ending_after` whose event was last written
        after that delta round (`WrittenAfter`), and those waiting for a run: what an
        incremental round starts from (a part of `current`)."""
        ...

    async def failing(self, staff_id: str) -> list[StaffItemRow]:
        """The rows whose item keeps failing."""
        ...

    async def save_link(self, row: StaffItemRow, link: EventLink, *, done: bool) -> StaffItemRow:
        """Write the link; with `done`, also clear the pending mark (unless the row changed
        since it was read) and any recorded failure."""
        ...

    async def save_links(self, saves: Sequence[LinkSave]) -> list[StaffItemRow]:
        """`save_link` for each, in order, and the rows it returned (a staff member's links in
        one transaction where the store has them, so that a run's links cost one request
        instead of one each). Each item at most once per staff member."""
        ...

    async def record_failure(self, row: StaffItemRow, failure: ItemFailure) -> None:
        """Keep the row pending, with the failure, whatever else changed meanwhile."""
        ...

    async def forget(self, row: StaffItemRow) -> bool:
        """Delete the row unless it changed since it was read; whether it was deleted."""
        ...

    async def pending_by_staff(self) -> Counter[str]:
        """How many rows wait for a run, per staff member."""
        ...

    async def row(self, staff_id: str, item_key: str) -> StaffItemRow | None:
        """One staff member's row for one item, if any."""
        ...


class StaffStore(Protocol):
    """One record per staff member. `merge` writes only the fields set in `changes`; with
    `if_match` it is a compare-and-swap that raises `ConcurrentUpdate` on a lost race."""

    async def get(self, staff_id: str) -> StaffRecord | None: ...

    async def all(self) -> list[StaffRecord]: ...

    async def create(self, staff_id: str, changes: StaffChanges) -> StaffRecord:
        """A new record; `ConcurrentUpdate` if one exists already."""
        ...

    async def merge(
        self, staff_id: str, changes: StaffChanges, *, if_match: str | None = None
    ) -> str:
        """The record's new ETag."""
        ...


class SyncRequester(Protocol):
    """What the receivers need: ask for syncs of some staff members."""

    async def request_sync(
        self, staff_ids: Iterable[str], reason: SyncReason, *, full: bool = False
    ) -> None: ...


class WorkQueue(SyncRequester, Protocol):
    async def send(self, request: StaffSyncRequest, *, delay_seconds: float = 0) -> None:
        """Queue one request as it is (ops actions, and work put back by the worker)."""
        ...

    async def request_sync_spread(
        self,
        staff_ids: Iterable[str],
        reason: SyncReason,
        *,
        spread_seconds: float,
        rosters: Mapping[str, Roster] | None = None,
        per_message: int = 1,
    ) -> None:
        """A plain sync of every staff member, the messages' visibility spread over
        `spread_seconds`: a request each, or batches (`sync.work.StaffSyncBatch`) of up to
        `per_message`; `rosters`: the roster entry to carry, for staff members who have no
        record yet."""
        ...


# ----- Coconut ------------------------------------------------------------------------------


class CoconutBusyTime(Protocol):
    """The external events (busy blocks) Coconut holds for a staff member."""

    async def busy_blocks(self, user_id: str) -> dict[str, dict[str, Any]]:
        """External id -> the block's attributes, for every external event of the user."""
        ...

    async def put_busy_block(self, user_id: str, block: BusyBlock) -> bool: ...

    async def delete_busy_block(self, user_id: str, external_id: str) -> None: ...


class CoconutRoster(Protocol):
    async def roster(self) -> list[CoconutUser]: ...


class CoconutListings(Protocol):
    """A staff member's appointments and absences as Coconut records them (the truth), every
    one that ends after `end_after`: booked and cancelled, deleted ones absent."""

    async def appointments(self, user_id: str, *, end_after: datetime) -> list[Appointment]: ...

    async def unavailabilities(
        self, user_id: str, *, end_after: datetime
    ) -> list[Unavailability]: ...
