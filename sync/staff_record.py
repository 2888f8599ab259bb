"""The staff record: what the service keeps per staff member, as typed groups of fields.

Each group is written by one party for one reason, so a write never has to touch another
party's fields:

| group          | written by                     | holds                                       |
| -------------- | ------------------------------ | ------------------------------------------- |
| `roster`       | the cycle (roster), the worker | Coconut e-mail, whether calendar sync is on |
| `mailbox`      | the worker                     | the Microsoft 365 user and time zone found  |
| `lease`        | `sync.lease`                   | who works on the mailbox now, until when    |
| `rerun`        | `sync.lease`                   | a request for one more pass, its wake-up    |
| `cursor`       | the worker (import)            | import window start and delta link          |
| `subscription` | the worker, lifecycle notices  | the change-notification subscription        |
| `outcome`      | the worker                     | status, reason, counts: what an admin sees  |
| `connection`   | ops disconnect/reconnect       | whether the service was taken out           |
| `listing`      | the worker, the cycle, ops     | Coconut's listings: when read, what mended  |

`StaffChanges` names the groups to write; within a group only the fields given to its
constructor are written (pydantic's "fields set"), so `Outcome(status="Error", reason=...)`
leaves `last_sync_at` as stored. Column names live in `sync.storage.staff_table` only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# What the worker and ops record; "Pending" is set by a reconnect until the next run.
RecordedStatus = Literal["", "Syncing", "Warning", "Error", "Disabled", "Disconnected", "Pending"]


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Roster(_Group):
    email: str = Field(default="", repr=False)  # the staff member's Coconut (work) e-mail
    calendar_sync: bool | None = None  # None: not on the roster (yet)


class Mailbox(_Group):
    email: str = Field(default="", repr=False)  # the e-mail the user was looked up by
    user_id: str = ""  # empty: no Microsoft 365 user has that e-mail as `mail`
    time_zone: str = ""
    resolved_at: datetime | None = None


class Lease(_Group):
    owner: str = ""
    until: datetime | None = None


class Rerun(_Group):
    requested: bool = False
    wakeup_at: datetime | None = None


class ImportCursor(_Group):
    initialised_at: datetime | None = None
    delta_link: str = ""
    round_started_at: datetime | None = None
    last_import_at: datetime | None = None
    # Set before a round PUTs a busy block, cleared with the cursor the round stores: while
    # set, Coconut may hold blocks a round from `delta_link` would never mention again (an event
    # made and gone since that link), so the next round is a full one (`delta_import`).
    unconfirmed_writes: bool = False

    @property
    def round_mark(self) -> str:
        """A short name for the last delta round completed ("" before the first): events the
        service writes carry it (`EventLink.written_after`)."""
        if not self.delta_link:
            return ""
        return hashlib.sha256(self.delta_link.encode()).hexdigest()[:16]


class SubscriptionState(_Group):
    id: str = ""
    expires_at: datetime | None = None
    user_id: str = ""  # the mailbox it watches
    error: str = ""  # why the last create/renew failed (the timer remains the safety net)
    # A create was sent then and its answer not recorded: the subscription may exist unnamed.
    creating_since: datetime | None = None


class Outcome(_Group):
    status: RecordedStatus = ""
    reason: str = ""
    at: datetime | None = None
    last_sync_at: datetime | None = None
    event_count: int = 0
    # No request for this mailbox before then (Graph throttles it, or the run keeps failing).
    throttled_until: datetime | None = None
    # Consecutive runs that failed for a reason that may pass (5xx, unreachable), and since when.
    failures: int = 0
    failing_since: datetime | None = None
    # A run gave up part way, perhaps after writing to the calendar: `event_count`, kept up
    # from each pass's own changes, may be off until a pass counts the links again.
    count_unsure: bool = False

    @classmethod
    def synced(cls, at: datetime, *, reason: str, event_count: int) -> Outcome:
        """What a pass that succeeded records (any earlier failure streak ends)."""
        return cls(
            status="Syncing",
            reason=reason,
            at=at,
            last_sync_at=at,
            event_count=event_count,
            failures=0,
            failing_since=None,
            count_unsure=False,
        )


class Connection(_Group):
    disconnected: bool = False
    disconnected_at: datetime | None = None
    removed_events: int = 0
    removed_busy_blocks: int = 0


class Listing(_Group):
    """Coconut's listings of the staff member (`sync.listings`)."""

    listed_at: datetime | None = None  # None: never read (the first sync reads them)
    due: bool = False  # read them on the next pass (calendar sync turned back on, reconnect)
    # What the last scheduled repair mended (webhooks that never arrived).
    repaired_at: datetime | None = None
    created: int = 0
    updated: int = 0
    removed: int = 0


GROUPS: Final = (
    "roster",
    "mailbox",
    "lease",
    "rerun",
    "cursor",
    "subscription",
    "outcome",
    "connection",
    "listing",
)
G = TypeVar("G", bound=_Group)


def _combined(earlier: G | None, later: G | None) -> G | None:
    """`later`'s set fields over `earlier`'s."""
    if earlier is None or later is None:
        return later if earlier is None else earlier
    fields = {**earlier.model_dump(exclude_unset=True), **later.model_dump(exclude_unset=True)}
    return type(earlier).model_validate(fields)


class StaffChanges(BaseModel):
    """A partial write of a staff record: the groups given, and in them the fields set."""

    model_config = ConfigDict(frozen=True)

    roster: Roster | None = None
    mailbox: Mailbox | None = None
    lease: Lease | None = None
    rerun: Rerun | None = None
    cursor: ImportCursor | None = None
    subscription: SubscriptionState | None = None
    outcome: Outcome | None = None
    connection: Connection | None = None
    listing: Listing | None = None

    def then(self, later: StaffChanges) -> StaffChanges:
        """These changes followed by `later` (later fields win)."""
        return StaffChanges(
            **{name: _combined(getattr(self, name), getattr(later, name)) for name in GROUPS}
        )

    def written(self) -> dict[str, dict[str, Any]]:
        """Group -> the fields to write (only those set)."""
        return {
            name: group.model_dump(exclude_unset=True)
            for name in GROUPS
            if (group := getattr(self, name)) is not None
        }

    @property
    def empty(self) -> bool:
        return not any(self.written().values())


class StaffRecord(BaseModel):
    """A staff record as read, with the ETag its compare-and-swap writes go against."""

    model_config = ConfigDict(frozen=True)

    staff_id: str
    etag: str = ""
    roster: Roster = Field(default_factory=Roster)
    mailbox: Mailbox = Field(default_factory=Mailbox)
    lease: Lease = Field(default_factory=Lease)
    rerun: Rerun = Field(default_factory=Rerun)
    cursor: ImportCursor = Field(default_factory=ImportCursor)
    subscription: SubscriptionState = Field(default_factory=SubscriptionState)
    outcome: Outcome = Field(default_factory=Outcome)
    connection: Connection = Field(default_factory=Connection)
    listing: Listing = Field(default_factory=Listing)

    def with_changes(self, changes: StaffChanges, etag: str) -> StaffRecord:
        """The record as it stands once `changes` are written (with the write's ETag)."""
        update: dict[str, Any] = {"etag": etag}
        for name, fields in changes.written().items():
            update[name] = getattr(self, name).model_copy(update=fields)
        return self.model_copy(update=update)

    @property
    def syncable(self) -> bool:
        """Not switched off in Coconut and not disconnected."""
        return self.roster.calendar_sync is not False and not self.connection.disconnected
