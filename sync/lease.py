"""One worker per mailbox: a short, renewed lease on the staff record (ETag compare-and-swap).

```python
held = await lease.acquire(staff_id)        # LeaseHeld if another worker has it
async with held:                            # renewed in the background meanwhile
    report = await one_pass(held.record)
    while not await held.finish_pass(report.changes):   # a rerun was requested meanwhile
        report = await one_pass(held.record)
```

- `finish_pass` writes the pass's outcome and gives the lease back in one swap. If a sync was
  requested while the pass ran (`request_rerun`), it writes the outcome and consumes the request
  instead, keeping the lease: the holder makes one more pass, from the record as just written.
  The swap fails if a request lands between the read and the write, so none is missed.
- A request that finds the mailbox busy asks the holder for that one more pass, and schedules
  one wake-up at the lease's end in case the holder died (`request_rerun` says when to). If the
  holder let go in between, the request is told so and runs at once instead of waiting for the
  lease's end.
- Leaving the block without `finish_pass` (a failure) gives the lease back whatever else changed,
  with the changes passed to `give_up`, if any.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Final, Literal

from sync.errors import ConcurrentUpdate
from sync.ports import StaffStore
from sync.staff_record import Lease, Outcome, Rerun, Roster, StaffChanges, StaffRecord

# A process's workers share this prefix: the lease's owner shows which process holds it.
PROCESS_ID: Final = f"worker-{uuid.uuid4().hex[:12]}"
# Swaps a renewal or a release retries when another write of the record got in between.
MAX_SWAP_ATTEMPTS: Final = 20
# Staff records given back that a process keeps to take their lease again without a read.
GIVEN_BACK_KEPT: Final = 4096


# What a request that found the mailbox busy should do (`StaffLease.request_rerun`).
RerunAsked = Literal["wake", "asked", "free"]


class LeaseHeld(Exception):
    """Another worker owns this staff member's mailbox right now (until `until` at the latest)."""

    def __init__(self, staff_id: str, until: datetime) -> None:
        super().__init__(staff_id)
        self.until = until


def _released() -> StaffChanges:
    return StaffChanges(lease=Lease(owner="", until=datetime.now(UTC)))


class StaffLease:
    """Takes staff leases of `duration`, renewed every third of it while held."""

    def __init__(self, store: StaffStore, duration: timedelta, *, owner: str = PROCESS_ID) -> None:
        self._store = store
        self.duration = duration
        self._owner = owner
        # Records as this process's runs gave them back: the next run for the staff member
        # swaps against that ETag instead of reading the record first (in a burst, the same
        # process takes the same lease again and again, and nothing else wrote it meanwhile).
        self._given_back: OrderedDict[str, StaffRecord] = OrderedDict()

    async def acquire(self, staff_id: str, *, roster: Roster | None = None) -> HeldLease:
        """Take the lease, or raise `LeaseHeld`. Each call is a new owner: two runs for the
        same staff member in one process must not both hold the mailbox. `roster`: Coconut's
        roster entry, written with the lease into a record that has none yet."""
        owner = f"{self._owner}-{uuid.uuid4().hex[:8]}"
        known = self._given_back.pop(staff_id, None)
        record = await take(self._store, staff_id, owner, self.duration, known=known, roster=roster)
        return HeldLease(self._store, record, owner, self.duration, on_release=self._gave_back)

    def given_back(self, staff_id: str) -> StaffRecord | None:
        """The staff member's record as this process last gave it back (its ETag tells whether
        it is still the stored one), if it is kept."""
        return self._given_back.get(staff_id)

    def wrote(self, record: StaffRecord) -> None:
        """A write of a record not leased (`sync.quiet_pass`): kept as given back."""
        self._gave_back(record)

    def _gave_back(self, record: StaffRecord) -> None:
        self._given_back[record.staff_id] = record
        self._given_back.move_to_end(record.staff_id)
        while len(self._given_back) > GIVEN_BACK_KEPT:
            self._given_back.popitem(last=False)

    async def request_rerun(self, staff_id: str, wake_at: datetime) -> RerunAsked:
        """Ask the holder for one more pass before it lets go.

        "wake": asked, and the caller should schedule a wake-up at `wake_at` (in case the
        holder died and never sees the request); "asked": asked, a wake-up is due by then
        already; "free": the lease was given back meanwhile, so nobody would see the request:
        the caller runs it itself, now. The request is a swap against the record as read, so
        it either lands before the holder's last swap (which then sees it) or finds the
        lease free."""
        for _ in range(MAX_SWAP_ATTEMPTS):
            record = await self._store.get(staff_id)
            if record is None or not is_held(record):
                return "free"
            scheduled = record.rerun.wakeup_at
            needs_wakeup = scheduled is None or scheduled < wake_at
            if record.rerun.requested and not needs_wakeup:
                return "asked"  # no write, so the holder's swaps are not disturbed
            rerun = (
                Rerun(requested=True, wakeup_at=wake_at) if needs_wakeup else Rerun(requested=True)
            )
            try:
                await self._store.merge(staff_id, StaffChanges(rerun=rerun), if_match=record.etag)
            except ConcurrentUpdate:
                continue  # the holder (or a renewal) wrote meanwhile: look again
            return "wake" if needs_wakeup else "asked"
        return "wake"  # the record keeps changing: the wake-up covers the request


def is_held(record: StaffRecord) -> bool:
    lease = record.lease
    return bool(lease.owner) and lease.until is not None and lease.until > datetime.now(UTC)


async def take(
    store: StaffStore,
    staff_id: str,
    owner: str,
    duration: timedelta,
    *,
    known: StaffRecord | None = None,
    roster: Roster | None = None,
) -> StaffRecord:
    """Take (or, for the same owner, extend) the lease by compare-and-swap; the record as it
    stands with the lease taken. `known`: the record as this process last wrote it, swapped
    against first (its ETag still matching means it is the record as stored), else read.
    `roster`: written too when the record has no roster entry yet (the timer cycle leaves a
    new staff member's record to their first run)."""
    now = datetime.now(UTC)
    changes = StaffChanges(lease=Lease(owner=owner, until=now + duration))
    record = known or await store.get(staff_id)
    if roster is not None and (record is None or record.roster.calendar_sync is None):
        changes = changes.then(StaffChanges(roster=roster))
    try:
        if record is None:
            return await store.create(staff_id, changes)
        until = record.lease.until
        if until is not None and until > now and record.lease.owner != owner:
            raise LeaseHeld(staff_id, until)
        if record.lease.owner and record.lease.owner != owner:
            # Its holder died part way (a pass lets go when it ends), perhaps after writing to
            # the calendar: the event count is not known any more (`Outcome.count_unsure`).
            changes = changes.then(StaffChanges(outcome=Outcome(count_unsure=True)))
        etag = await store.merge(staff_id, changes, if_match=record.etag)
    except ConcurrentUpdate:
        if known is not None:  # written since: look at it as it stands
            return await take(store, staff_id, owner, duration, roster=roster)
        raise LeaseHeld(staff_id, now + duration) from None
    return record.with_changes(changes, etag)


class HeldLease:
    """A lease this run holds; see the module docstring."""

    def __init__(
        self,
        store: StaffStore,
        record: StaffRecord,
        owner: str,
        duration: timedelta,
        *,
        on_release: Callable[[StaffRecord], None] | None = None,
    ) -> None:
        self._store = store
        self.record = record
        self.owner = owner
        self._duration = duration
        self._on_release = on_release
        self._released = False
        self._renewal: asyncio.Task[None] | None = None

    @property
    def staff_id(self) -> str:
        return self.record.staff_id

    async def __aenter__(self) -> HeldLease:
        self._renewal = asyncio.create_task(self._keep())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop_renewal()
        if not self._released:
            await self.give_up(StaffChanges())

    async def finish_pass(self, changes: StaffChanges) -> bool:
        """Write the pass's outcome; True when the lease was given back with it, False when a
        rerun was requested meanwhile (consumed: the caller makes one more pass)."""
        # First against the record as this run last read or wrote it: if nothing wrote it since
        # (the usual case), its ETag still matches and no read is needed; a rerun request, a
        # renewal or a write of the pass's own changes the ETag, and the swap reads again.
        known: StaffRecord | None = self.record
        for _ in range(MAX_SWAP_ATTEMPTS):
            record = known or await self._store.get(self.staff_id)
            known = None
            if record is None or record.lease.owner != self.owner:
                # Lost the lease (expired and taken): write what this pass found all the same.
                await self._write_anyway(changes)
                self._released = True
                return True
            rerun = record.rerun.requested
            write = changes.then(
                StaffChanges(rerun=Rerun(requested=False)) if rerun else _released()
            )
            try:
                etag = await self._store.merge(self.staff_id, write, if_match=record.etag)
            except ConcurrentUpdate:
                continue  # a rerun request or a renewal got in between: read again
            self.record = record.with_changes(write, etag)
            if rerun:
                return False
            self._stop_renewal()
            self._released = True
            if self._on_release is not None:
                self._on_release(self.record)
            return True
        return False  # the record keeps changing: one more pass, then try again

    async def give_up(self, changes: StaffChanges) -> None:
        """Give the lease back whatever else changed (after a failure), writing `changes`;
        still only if this run holds it."""
        self._stop_renewal()
        if self._released:
            return
        self._released = True
        await self._write_anyway(changes)

    async def _write_anyway(self, changes: StaffChanges) -> None:
        record = await self._store.get(self.staff_id)
        if record is not None and record.lease.owner == self.owner:
            changes = changes.then(_released())
        if not changes.empty:
            await self._store.merge(self.staff_id, changes)

    def _stop_renewal(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None

    async def _keep(self) -> None:
        """Extend the lease while a long run (a backlog, a full resync) is under way."""
        while True:
            await asyncio.sleep(self._duration.total_seconds() / 3)
            # A swap can lose to another write of the record (a rerun request): try again at
            # once rather than let the lease run out under a live run.
            for _ in range(MAX_SWAP_ATTEMPTS):
                with contextlib.suppress(LeaseHeld):
                    await take(self._store, self.staff_id, self.owner, self._duration)
                    break
                await asyncio.sleep(0.1)
