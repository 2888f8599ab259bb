"""Ops commands: what they queue and record, and when they refuse (fakes for storage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync.cycle import RosterRefresh
from sync.ops.commands import StaffCommands
from sync.ops.errors import StaffLeased, UnknownCommand, UnknownStaff, WrongState
from sync.storage.staff_records import LeaseHeld, StaffRecord
from sync.work import StaffSyncRequest


class FakeRecords:
    def __init__(self, **records: dict[str, Any]) -> None:
        self.fields = records
        self.held_by: str | None = None

    async def get(self, staff_id: str) -> StaffRecord | None:
        fields = self.fields.get(staff_id)
        return StaffRecord(staff_id, dict(fields), "e") if fields is not None else None

    async def acquire_lease(self, staff_id: str, owner: str, duration: timedelta) -> None:
        if self.held_by is not None:
            raise LeaseHeld(staff_id, datetime.now(UTC) + timedelta(minutes=5))
        self.fields[staff_id].update(
            LeaseOwner=owner, LeaseUntil=datetime.now(UTC) + timedelta(minutes=5)
        )

    async def force_release(self, staff_id: str, owner: str, fields: dict[str, Any]) -> None:
        self.fields[staff_id].update(fields, LeaseOwner="")


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[StaffSyncRequest] = []

    async def send(self, request: StaffSyncRequest, *, delay_seconds: float = 0) -> None:
        self.sent.append(request)

    async def request_sync(self, staff_ids: list[str], reason: str, *, full: bool) -> None:
        self.sent += [StaffSyncRequest(staff_id=s, reason="ops", full=full) for s in staff_ids]


class FakeCycle:
    async def refresh_roster(self) -> RosterRefresh:
        return RosterRefresh(["U-2", "U-1"], 3, 1)


def commands(records: FakeRecords) -> tuple[StaffCommands, FakeQueue]:
    queue = FakeQueue()
    return StaffCommands(records, queue, FakeCycle()), queue  # type: ignore[arg-type]


async def test_resync_queues_a_full_pass_of_both_directions() -> None:
    run, queue = commands(FakeRecords(**{"U-1": {"Status": "Syncing"}}))
    accepted = await run.run("resync", "U-1")
    assert (accepted.command, accepted.status) == ("resync", "Syncing")
    assert [(r.staff_id, r.full, r.action, r.reason) for r in queue.sent] == [
        ("U-1", True, "sync", "ops")
    ]


async def test_disconnect_stops_syncing_at_once_and_queues_the_cleanup() -> None:
    records = FakeRecords(**{"U-1": {"Status": "Syncing"}})
    run, queue = commands(records)
    accepted = await run.disconnect("U-1")
    assert accepted.status == "Disconnecting"
    assert records.fields["U-1"]["Disconnected"] is True
    assert records.fields["U-1"]["LeaseOwner"] == "", "the ops lease is given back"
    assert [(r.action, r.full) for r in queue.sent] == [("disconnect", False)]


async def test_reconnect_starts_afresh_and_queues_a_full_sync() -> None:
    records = FakeRecords(**{"U-1": {"Status": "Disconnected", "Disconnected": True}})
    run, queue = commands(records)
    accepted = await run.reconnect("U-1")
    fields = records.fields["U-1"]
    assert accepted.status == "Pending"
    assert fields["Disconnected"] is False
    assert fields["DeltaLink"] == ""
    assert fields["InitialisedAt"] == accepted.requested_at
    assert [(r.action, r.full) for r in queue.sent] == [("sync", True)]


async def test_reinitialise_moves_the_window_start_to_now() -> None:
    records = FakeRecords(**{"U-1": {"InitialisedAt": datetime(2026, 1, 1, tzinfo=UTC)}})
    run, _ = commands(records)
    accepted = await run.reinitialise("U-1")
    assert records.fields["U-1"]["InitialisedAt"] == accepted.requested_at


async def test_refusals() -> None:
    records = FakeRecords(
        **{"U-1": {"Status": "Syncing"}, "U-2": {"Disconnected": True, "Status": "Disconnected"}}
    )
    run, queue = commands(records)
    with pytest.raises(UnknownStaff):
        await run.resync("U-9")
    with pytest.raises(UnknownCommand):
        await run.run("explode", "U-1")
    for command in ("resync", "reinitialise"):
        with pytest.raises(WrongState, match="reconnect"):
            await run.run(command, "U-2")
    with pytest.raises(WrongState, match="not disconnected"):
        await run.reconnect("U-1")
    records.held_by = "worker"
    records.fields["U-1"]["LeaseUntil"] = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(StaffLeased) as leased:
        await run.disconnect("U-1")
    assert 1 <= leased.value.retry_after <= 5, "a worker's run ends long before its lease"
    assert "Disconnected" not in records.fields["U-1"]
    assert queue.sent == []


async def test_a_tenant_resync_refreshes_the_roster_first() -> None:
    run, queue = commands(FakeRecords())
    answer = await run.resync_all()
    assert (answer.staff_ids, answer.roster_size) == (["U-1", "U-2"], 3)
    assert {(r.staff_id, r.full) for r in queue.sent} == {("U-1", True), ("U-2", True)}
