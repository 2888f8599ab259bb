"""The periodic cycle (timer, `SYNC_TIMER_SCHEDULE`): the safety net behind webhooks and
change notifications.

Refreshes the staff roster from the Coconut API (only `calendar_sync: true` staff are synced),
then asks for one sync of every enabled staff member, in batch messages of
`sync.work.STAFF_PER_MESSAGE` (the worker runs each staff member on their own) spread over a
short interval so that 10,000 staff do not land on the queue in the same second. A staff
member new to the service has no record yet: their request carries the roster entry and their
run's lease creates the record with it, so a bank's first cycle costs a write per staff
member, not two (the cycle's insert, then the lease's swap). Each sync pulls Exchange changes
(delta), retries pending export work and renews the staff member's change-notification
subscription when it expires soon, so the timer itself stays cheap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from sync.coconut.api import CoconutRefused, CoconutUnavailable
from sync.concurrency import all_settled
from sync.errors import ConcurrentUpdate
from sync.ports import CoconutRoster, StaffStore, WorkQueue
from sync.staff_record import Listing, Roster, StaffChanges, StaffRecord
from sync.work import STAFF_PER_MESSAGE

log = logging.getLogger("sync.cycle")

# Requests go out over at most this many seconds: staff/100 s, capped at a minute.
MAX_SPREAD_SECONDS = 60.0
# The scheduled repair's requests go out over this share of its period.
REPAIR_SPREAD_SHARE = 0.8
ROSTER_WRITE_CONCURRENCY = 64


@dataclass(frozen=True)
class CycleOutcome:
    enqueued: int
    roster_size: int | None  # None when the roster could not be read this time
    roster_changes: int
    seconds: float


@dataclass(frozen=True)
class RosterRefresh:
    enabled: list[str]  # staff to sync: calendar_sync on, not disconnected
    roster_size: int | None  # None when the roster could not be read this time
    changes: int
    # Enabled staff with no record, left unwritten for their run's lease to create (`run`).
    unrecorded: dict[str, Roster] = field(default_factory=dict)


def _disconnected(record: StaffRecord | None) -> bool:
    return record is not None and record.connection.disconnected


def _syncable(known: dict[str, StaffRecord]) -> list[str]:
    """Known staff not switched off in Coconut and not disconnected."""
    return [staff_id for staff_id, record in known.items() if record.syncable]


def _differs(record: StaffRecord | None, roster: Roster) -> bool:
    return record is None or record.roster != roster


def _roster_changes(record: StaffRecord | None, roster: Roster) -> StaffChanges:
    """The roster's word; calendar sync turned back on means reading Coconut's listings again
    (what was booked meanwhile is in no webhook the service acted on)."""
    if record is not None and record.roster.calendar_sync is False and roster.calendar_sync:
        return StaffChanges(roster=roster, listing=Listing(due=True))
    return StaffChanges(roster=roster)


class PeriodicCycle:
    def __init__(self, staff: StaffStore, coconut: CoconutRoster, queue: WorkQueue) -> None:
        self._staff = staff
        self._coconut = coconut
        self._queue = queue

    async def run(self) -> CycleOutcome:
        started = time.monotonic()
        refresh = await self.refresh_roster(leave_new_to_their_run=True)
        enabled, roster_size, changes = refresh.enabled, refresh.roster_size, refresh.changes
        spread = min(MAX_SPREAD_SECONDS, len(enabled) / 100)
        await self._queue.request_sync_spread(
            enabled,
            "timer",
            spread_seconds=spread,
            rosters=refresh.unrecorded,
            per_message=STAFF_PER_MESSAGE,
        )
        outcome = CycleOutcome(len(enabled), roster_size, changes, time.monotonic() - started)
        log.info(
            "periodic cycle",
            extra={
                "operation": "timer",
                "outcome": "ok",
                "enqueued": outcome.enqueued,
                "roster_changes": changes,
                "latency_ms": round(outcome.seconds * 1000, 1),
            },
        )
        return outcome

    async def refresh_roster(self, *, leave_new_to_their_run: bool = False) -> RosterRefresh:
        """Bring the staff records in step with Coconut's roster (also an ops backfill's first
        step); who is to be synced. `leave_new_to_their_run`: enabled staff with no record are
        not written but returned (`RosterRefresh.unrecorded`), for their sync request to
        carry."""
        # The records are read while Coconut pages through the roster: neither waits on the
        # other, and both have finished before anything is decided (or raised: storage's
        # failure first, as when the records were read first).
        records, roster = await asyncio.gather(
            self._staff.all(), self._coconut.roster(), return_exceptions=True
        )
        if isinstance(records, BaseException):
            raise records
        known = {record.staff_id: record for record in records}
        roster_size: int | None = None
        changes = 0
        unrecorded: dict[str, Roster] = {}
        if isinstance(roster, (CoconutUnavailable, CoconutRefused)):
            # Keep syncing the staff already known; the roster is refreshed next cycle.
            log.warning(
                "roster refresh failed",
                extra={"operation": "roster", "outcome": "failed", "coconut_status": roster.status},
            )
            enabled = _syncable(known)
        elif isinstance(roster, BaseException):
            raise roster
        else:
            roster_size = len(roster)
            updates = {
                user.id: _roster_changes(known.get(user.id), entry)
                for user in roster
                if _differs(
                    known.get(user.id),
                    entry := Roster(email=user.email, calendar_sync=user.calendar_sync),
                )
            }
            changes = len(updates)
            new = {s for s in updates if s not in known}
            if leave_new_to_their_run:
                unrecorded = {
                    s: first
                    for s in new
                    if (first := updates[s].roster) is not None and first.calendar_sync
                }
            # A new staff member with calendar sync off is written here: no run will.
            await self._write(
                {s: c for s, c in updates.items() if s not in unrecorded},
                new=new - unrecorded.keys(),
            )
            switched_off = {user.id for user in roster if not user.calendar_sync}
            on_roster = [user.id for user in roster if user.calendar_sync]
            # Staff known from webhooks but absent from the roster keep their safety net too;
            # only an explicit `calendar_sync: false` (or a disconnect) stops a staff member.
            known_elsewhere = [s for s in _syncable(known) if s not in switched_off]
            enabled = sorted(
                {s for s in on_roster if not _disconnected(known.get(s))} | set(known_elsewhere)
            )
        return RosterRefresh(enabled, roster_size, changes, unrecorded)

    async def request_repair(self, period_seconds: float) -> int:
        """The scheduled repair (`COCONUT_RECONCILE_SCHEDULE`): one "reconcile" request per
        synced staff member, spread over most of the period rather than all at once."""
        staff_ids = sorted(r.staff_id for r in await self._staff.all() if r.syncable)
        spread = max(0.0, period_seconds * REPAIR_SPREAD_SHARE)
        await self._queue.request_sync_spread(staff_ids, "reconcile", spread_seconds=spread)
        log.info(
            "coconut reconcile scheduled",
            extra={"operation": "coconut_reconcile", "outcome": "ok", "enqueued": len(staff_ids)},
        )
        return len(staff_ids)

    async def _write(self, updates: dict[str, StaffChanges], *, new: set[str]) -> None:
        """Staff without a record at the read are created (an insert, which storage does without
        reading the record first: a new roster of 10,000 is that many); one that appeared
        meanwhile (a webhook's) is merged into as the others are."""
        slots = asyncio.Semaphore(ROSTER_WRITE_CONCURRENCY)

        async def write(staff_id: str, changes: StaffChanges) -> None:
            async with slots:
                if staff_id in new:
                    try:
                        await self._staff.create(staff_id, changes)
                        return
                    except ConcurrentUpdate:
                        pass
                await self._staff.merge(staff_id, changes)

        await all_settled(write(k, v) for k, v in updates.items())
