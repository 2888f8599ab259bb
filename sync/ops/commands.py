"""What an administrator can ask of one staff member, or of the whole tenant.

The work itself is done by the staff worker under the staff member's lease: a command queues a
`StaffSyncRequest` (a full pass, or a disconnect). A command that also changes the staff record
(re-initialise, disconnect, reconnect) makes that change under the lease too, so it cannot be
overwritten by a worker finishing at the same moment; while a worker holds the lease, it is
refused with `StaffLeased` (HTTP 409) rather than waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, get_args

from pydantic import BaseModel

from sync.cycle import PeriodicCycle
from sync.lease import LeaseHeld, StaffLease
from sync.ops.errors import StaffLeased, UnknownCommand, UnknownStaff, WrongState
from sync.ops.status import Status, effective_status
from sync.ports import StaffStore, WorkQueue
from sync.staff_record import (
    Connection,
    ImportCursor,
    Listing,
    Outcome,
    StaffChanges,
    StaffRecord,
)
from sync.work import StaffSyncRequest

Command = Literal["resync", "reinitialise", "disconnect", "reconnect"]
COMMANDS: Final[tuple[str, ...]] = get_args(Command)
# Long enough for one record update; a crash in between frees the staff member soon.
OPS_LEASE: Final = timedelta(seconds=30)
LEASED_RETRY_SECONDS: Final = 5.0


class CommandAccepted(BaseModel):
    staff_id: str
    command: Command
    status: Status
    requested_at: datetime


class TenantResync(BaseModel):
    requested_at: datetime
    staff_ids: list[str]
    # None when Coconut's roster could not be read and the known staff were used.
    roster_size: int | None


class StaffCommands:
    def __init__(self, staff: StaffStore, queue: WorkQueue, cycle: PeriodicCycle) -> None:
        self._staff = staff
        self._lease = StaffLease(staff, OPS_LEASE, owner="ops")
        self._queue = queue
        self._cycle = cycle

    async def run(self, command: str, staff_id: str) -> CommandAccepted:
        handlers: dict[str, Callable[[str], Awaitable[CommandAccepted]]] = {
            "resync": self.resync,
            "reinitialise": self.reinitialise,
            "disconnect": self.disconnect,
            "reconnect": self.reconnect,
        }
        handler = handlers.get(command)
        if handler is None:
            raise UnknownCommand(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
        return await handler(staff_id)

    async def resync(self, staff_id: str) -> CommandAccepted:
        """A full reconcile of both directions: every item re-checked, Outlook edits repaired,
        a fresh import round. Queued; a busy lease only delays it."""
        record = await self._connected(staff_id, "resync")
        now = datetime.now(UTC)
        await self._queue.send(StaffSyncRequest(staff_id=staff_id, reason="ops", full=True))
        return CommandAccepted(
            staff_id=staff_id,
            command="resync",
            status=effective_status(record),
            requested_at=now,
        )

    async def reinitialise(self, staff_id: str) -> CommandAccepted:
        """Start the import window afresh (one day before now) and resync."""
        await self._connected(staff_id, "reinitialise")
        now = datetime.now(UTC)
        await self._change(
            staff_id, StaffChanges(cursor=ImportCursor(initialised_at=now, delta_link=""))
        )
        await self._queue.send(StaffSyncRequest(staff_id=staff_id, reason="ops", full=True))
        return await self._accepted(staff_id, "reinitialise", now)

    async def disconnect(self, staff_id: str) -> CommandAccepted:
        """Stop syncing at once; the worker then removes the service's events and busy blocks."""
        await self._known(staff_id)
        now = datetime.now(UTC)
        await self._change(
            staff_id,
            StaffChanges(
                connection=Connection(disconnected=True),
                outcome=Outcome(reason="disconnect requested by an administrator", at=now),
            ),
        )
        await self._queue.send(
            StaffSyncRequest(staff_id=staff_id, reason="ops", action="disconnect")
        )
        return await self._accepted(staff_id, "disconnect", now)

    async def reconnect(self, staff_id: str) -> CommandAccepted:
        """Sync again from a fresh start: new import window, every event recreated."""
        record = await self._known(staff_id)
        if not record.connection.disconnected:
            raise WrongState(f"staff member {staff_id!r} is not disconnected")
        now = datetime.now(UTC)
        await self._change(
            staff_id,
            StaffChanges(
                connection=Connection(disconnected=False),
                outcome=Outcome(
                    status="Pending",
                    reason="reconnected by an administrator; a full sync is queued",
                    at=now,
                ),
                cursor=ImportCursor(initialised_at=now, delta_link=""),
                listing=Listing(due=True),
            ),
        )
        await self._queue.send(StaffSyncRequest(staff_id=staff_id, reason="ops", full=True))
        return await self._accepted(staff_id, "reconnect", now)

    async def resync_all(self, staff_ids: list[str] | None = None) -> TenantResync:
        """A full resync of many staff (a first backfill, or a whole tenant): the roster is
        refreshed first, so staff Coconut has just added are included."""
        now = datetime.now(UTC)
        if staff_ids is None:
            refresh = await self._cycle.refresh_roster()
            chosen, roster_size = sorted(refresh.enabled), refresh.roster_size
        else:
            for staff_id in staff_ids:
                await self._connected(staff_id, "resync")
            chosen, roster_size = sorted(set(staff_ids)), None
        await self._queue.request_sync(chosen, "ops", full=True)
        return TenantResync(requested_at=now, staff_ids=chosen, roster_size=roster_size)

    async def _known(self, staff_id: str) -> StaffRecord:
        record = await self._staff.get(staff_id)
        if record is None:
            raise UnknownStaff(staff_id)
        return record

    async def _connected(self, staff_id: str, command: str) -> StaffRecord:
        record = await self._known(staff_id)
        if record.connection.disconnected:
            raise WrongState(
                f"staff member {staff_id!r} is disconnected; reconnect them instead of {command}"
            )
        return record

    async def _change(self, staff_id: str, changes: StaffChanges) -> None:
        try:
            held = await self._lease.acquire(staff_id)
        except LeaseHeld as busy:
            left = (busy.until - datetime.now(UTC)).total_seconds()
            # The lease is an upper bound; a worker's run usually ends within seconds.
            raise StaffLeased(staff_id, min(max(1.0, left), LEASED_RETRY_SECONDS)) from None
        await held.give_up(changes)

    async def _accepted(self, staff_id: str, command: Command, now: datetime) -> CommandAccepted:
        record = await self._known(staff_id)
        return CommandAccepted(
            staff_id=staff_id,
            command=command,
            status=effective_status(record),
            requested_at=now,
        )
