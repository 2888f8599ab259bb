"""What can go wrong in the memory adapters: failures scheduled per service, answered in order,
and a crash that stops every adapter of the process until it restarts."""

from __future__ import annotations

import pytest

from sync.coconut.api import CoconutUnavailable
from sync.errors import StorageUnavailable
from sync.graph.calls import retry_later
from sync.graph.errors import GraphRetryable
from sync.memory.calendar import MemoryCalendar
from sync.memory.coconut import MemoryCoconut
from sync.memory.faults import Crash, Faults
from sync.memory.storage import STORAGE, MemoryQueue, MemoryStaffStore
from sync.memory.world import MemoryWorld
from sync.staff_record import StaffChanges
from sync.work import StaffSyncRequest


def test_scheduled_failures_are_answered_in_order_then_requests_work_again() -> None:
    faults = Faults()
    first, second = StorageUnavailable("first"), StorageUnavailable("second")
    faults.fail_next(STORAGE, first)
    faults.fail_next(STORAGE, second)

    faults.check("graph")  # another service is not affected
    with pytest.raises(StorageUnavailable) as one:
        faults.check(STORAGE)
    with pytest.raises(StorageUnavailable) as two:
        faults.check(STORAGE)
    faults.check(STORAGE)

    assert (one.value, two.value) == (first, second)


def test_a_crash_stops_every_request_until_the_restart_which_drops_what_was_scheduled() -> None:
    faults = Faults(crash_after_writes=3)
    faults.fail_next(STORAGE, StorageUnavailable("scheduled"))
    faults.crash()

    for service in ("graph", STORAGE, "coconut"):
        with pytest.raises(Crash):
            faults.check(service)
    faults.restart()

    assert (faults.crashed, faults.crash_after_writes, faults.scheduled) == (False, 0, {})
    faults.check(STORAGE)


async def test_adapters_sharing_faults_fail_together() -> None:
    world = MemoryWorld()
    world.coconut.add_user("U-1", "kim@bank.example")
    world.faults.crash()

    with pytest.raises(Crash):
        await world.staff.get("U-1")
    with pytest.raises(Crash):
        await world.queue.send(StaffSyncRequest(staff_id="U-1", reason="timer"))
    with pytest.raises(Crash):
        await world.calendar.find_user("kim@bank.example")
    with pytest.raises(Crash):
        await world.coconut.busy_blocks("U-1")
    with pytest.raises(Crash):
        await world.links.rows("U-1")
    with pytest.raises(Crash):
        await world.table.read("appointment:1")
    assert world.queue.messages == []


async def test_a_storage_failure_reaches_storage_only() -> None:
    faults = Faults()
    staff, queue = MemoryStaffStore(faults), MemoryQueue(faults)
    calendar = MemoryCalendar(faults)
    calendar.add_user("kim@bank.example")
    faults.fail_next(STORAGE, StorageUnavailable("down"))

    assert await calendar.find_user("kim@bank.example") is not None
    with pytest.raises(StorageUnavailable):
        await staff.merge("U-1", StaffChanges())
    await queue.send(StaffSyncRequest(staff_id="U-1", reason="timer"))

    assert [m.request.staff_id for m in queue.messages] == ["U-1"]
    assert await staff.get("U-1") is None, "the failed write wrote nothing"


async def test_coconut_failures_are_scheduled_under_coconut() -> None:
    faults = Faults()
    coconut = MemoryCoconut(faults)
    coconut.add_user("U-1", "kim@bank.example")
    faults.fail_next("coconut", CoconutUnavailable(503, retry_after=2.0))

    with pytest.raises(CoconutUnavailable) as unavailable:
        await coconut.roster()

    assert unavailable.value.delay == 2.0
    assert [user.id for user in await coconut.roster()] == ["U-1"]
    assert coconut.requests == 2, "a failed request is a request too"


def test_graph_failures_are_the_retryable_kind_graph_raises() -> None:
    faults = Faults()
    faults.fail_next("graph", retry_later(3.0, 429, None))

    with pytest.raises(GraphRetryable) as throttled:
        faults.check("graph")

    assert (throttled.value.delay, throttled.value.status) == (3.0, 429)
