"""Ops commands: what they queue and record, and when they refuse (over the memory stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.cycle import PeriodicCycle
from sync.lease import StaffLease
from sync.memory.coconut import MemoryCoconut
from sync.memory.storage import MemoryQueue, MemoryStaffStore
from sync.ops.commands import StaffCommands
from sync.ops.errors import StaffLeased, UnknownCommand, UnknownStaff, WrongState
from sync.staff_record import (
    Connection,
    ImportCursor,
    Outcome,
    RecordedStatus,
    Roster,
    StaffChanges,
    StaffRecord,
)


class Ops:
    def __init__(self) -> None:
        self.staff = MemoryStaffStore()
        self.coconut = MemoryCoconut()
        self.queue = MemoryQueue()
        cycle = PeriodicCycle(self.staff, self.coconut, self.queue)
        self.commands = StaffCommands(self.staff, self.queue, cycle)

    async def known(
        self, staff_id: str, status: RecordedStatus = "Syncing", *, disconnected: bool = False
    ) -> None:
        cursor = ImportCursor(
            initialised_at=datetime(2026, 1, 1, tzinfo=UTC), delta_link="delta|old"
        )
        await self.staff.create(
            staff_id,
            StaffChanges(
                roster=Roster(email=f"{staff_id}@bank.example", calendar_sync=True),
                outcome=Outcome(status=status),
                connection=Connection(disconnected=disconnected),
                cursor=cursor,
            ),
        )

    async def record(self, staff_id: str) -> StaffRecord:
        found = await self.staff.get(staff_id)
        assert found is not None
        return found

    def queued(self) -> list[tuple[str, str, str, bool]]:
        return [
            (m.request.staff_id, m.request.action, m.request.reason, m.request.full)
            for m in self.queue.messages
        ]


async def test_resync_queues_a_full_pass_of_both_directions() -> None:
    ops = Ops()
    await ops.known("U-1")
    accepted = await ops.commands.run("resync", "U-1")
    assert (accepted.command, accepted.status) == ("resync", "Syncing")
    assert ops.queued() == [("U-1", "sync", "ops", True)]
    assert (await ops.record("U-1")).cursor.delta_link == "delta|old", "the import goes on"


async def test_disconnect_stops_syncing_at_once_and_queues_the_cleanup() -> None:
    ops = Ops()
    await ops.known("U-1")
    accepted = await ops.commands.disconnect("U-1")
    assert accepted.status == "Disconnecting"
    stored = await ops.record("U-1")
    assert stored.connection.disconnected is True
    assert not stored.syncable
    assert stored.outcome.reason == "disconnect requested by an administrator"
    assert stored.lease.owner == "", "the ops lease is given back"
    assert ops.queued() == [("U-1", "disconnect", "ops", False)]


async def test_reconnect_starts_afresh_and_queues_a_full_sync() -> None:
    ops = Ops()
    await ops.known("U-1", "Disconnected", disconnected=True)
    accepted = await ops.commands.reconnect("U-1")
    stored = await ops.record("U-1")
    assert accepted.status == "Pending"
    assert stored.connection.disconnected is False
    assert stored.outcome.status == "Pending"
    assert stored.cursor.delta_link == ""
    assert stored.cursor.initialised_at == accepted.requested_at
    assert stored.lease.owner == ""
    assert ops.queued() == [("U-1", "sync", "ops", True)]


async def test_reinitialise_moves_the_window_start_to_now_and_resyncs() -> None:
    ops = Ops()
    await ops.known("U-1")
    accepted = await ops.commands.reinitialise("U-1")
    stored = await ops.record("U-1")
    assert stored.cursor.initialised_at == accepted.requested_at
    assert stored.cursor.delta_link == ""
    assert stored.outcome.status == "Syncing", "the status stays until the run"
    assert ops.queued() == [("U-1", "sync", "ops", True)]


async def test_unknown_staff_unknown_commands_and_wrong_states_are_refused() -> None:
    ops = Ops()
    await ops.known("U-1")
    await ops.known("U-2", "Disconnected", disconnected=True)
    for command in ("resync", "reinitialise", "disconnect", "reconnect"):
        with pytest.raises(UnknownStaff):
            await ops.commands.run(command, "U-9")
    with pytest.raises(UnknownCommand, match="resync, reinitialise, disconnect, reconnect"):
        await ops.commands.run("explode", "U-1")
    for command in ("resync", "reinitialise"):
        with pytest.raises(WrongState, match="reconnect"):
            await ops.commands.run(command, "U-2")
    with pytest.raises(WrongState, match="not disconnected"):
        await ops.commands.reconnect("U-1")
    with pytest.raises(WrongState):
        await ops.commands.resync_all(["U-1", "U-2"])
    assert ops.queued() == []
    assert await ops.staff.get("U-9") is None, "a refusal creates no record"


async def test_a_change_while_a_worker_holds_the_lease_is_refused_and_writes_nothing() -> None:
    ops = Ops()
    await ops.known("U-1")
    await ops.known("U-2", "Disconnected", disconnected=True)
    worker = StaffLease(ops.staff, timedelta(minutes=5), owner="worker")
    held, other = await worker.acquire("U-1"), await worker.acquire("U-2")
    for command, staff_id in (("disconnect", "U-1"), ("reinitialise", "U-1"), ("reconnect", "U-2")):
        with pytest.raises(StaffLeased) as leased:
            await ops.commands.run(command, staff_id)
        assert 1 <= leased.value.retry_after <= 5, "a worker's run ends long before its lease"
    assert (await ops.record("U-2")).connection.disconnected is True
    assert (await ops.record("U-2")).lease.owner == other.owner
    stored = await ops.record("U-1")
    assert stored.connection.disconnected is False
    assert stored.cursor.delta_link == "delta|old"
    assert stored.lease.owner == held.owner
    assert ops.queued() == []
    # A resync only queues: the lease merely delays its run.
    await ops.commands.resync("U-1")
    assert ops.queued() == [("U-1", "sync", "ops", True)]
    await held.give_up(StaffChanges())
    await ops.commands.disconnect("U-1")
    assert (await ops.record("U-1")).connection.disconnected is True


async def test_a_tenant_resync_refreshes_the_roster_first() -> None:
    ops = Ops()
    await ops.known("U-3", "Disconnected", disconnected=True)
    ops.coconut.add_user("U-2", "lee@bank.example")
    ops.coconut.add_user("U-1", "kim@bank.example")
    ops.coconut.add_user("U-3", "ann@bank.example")
    ops.coconut.add_user("U-4", "off@bank.example", calendar_sync=False)

    answer = await ops.commands.resync_all()

    assert (answer.staff_ids, answer.roster_size) == (["U-1", "U-2"], 4)
    assert sorted(ops.queued()) == [("U-1", "sync", "ops", True), ("U-2", "sync", "ops", True)]
    assert (await ops.record("U-2")).roster == Roster(email="lee@bank.example", calendar_sync=True)
    assert (await ops.record("U-4")).roster.calendar_sync is False


async def test_a_resync_of_chosen_staff_skips_the_roster() -> None:
    ops = Ops()
    await ops.known("U-1")
    await ops.known("U-2")
    answer = await ops.commands.resync_all(["U-2", "U-1", "U-2"])
    assert (answer.staff_ids, answer.roster_size) == (["U-1", "U-2"], None)
    assert ops.coconut.requests == 0
    assert ops.queued() == [("U-1", "sync", "ops", True), ("U-2", "sync", "ops", True)]
