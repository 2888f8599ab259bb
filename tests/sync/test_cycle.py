"""The periodic cycle's roster refresh (over the memory stores)."""

from __future__ import annotations

from datetime import timedelta

from sync.cycle import PeriodicCycle
from sync.lease import StaffLease
from sync.memory.coconut import MemoryCoconut
from sync.memory.storage import MemoryQueue, MemoryStaffStore
from sync.staff_record import Mailbox, Roster, StaffChanges, StaffRecord
from sync.work import STAFF_PER_MESSAGE, unpacked

MINUTE = timedelta(minutes=1)


class WebhookMeanwhile(MemoryStaffStore):
    """A webhook creates U-1's record just after the cycle has read the records."""

    async def all(self) -> list[StaffRecord]:
        records = await super().all()
        await self.create("U-1", StaffChanges(mailbox=Mailbox(user_id="graph-U-1")))
        return records


class CountedStaffStore(MemoryStaffStore):
    """Counts the record writes."""

    writes = 0

    async def create(self, staff_id: str, changes: StaffChanges) -> StaffRecord:
        self.writes += 1
        return await super().create(staff_id, changes)

    async def merge(
        self, staff_id: str, changes: StaffChanges, *, if_match: str | None = None
    ) -> str:
        self.writes += 1
        return await super().merge(staff_id, changes, if_match=if_match)


async def first_runs(staff: MemoryStaffStore, queue: MemoryQueue) -> None:
    """What each queued run does first: take the staff member's lease (with the roster entry
    its request carries)."""
    for request in queue.requests():
        held = await StaffLease(staff, MINUTE).acquire(request.staff_id, roster=request.roster)
        await held.give_up(StaffChanges())


async def test_a_new_staff_members_record_is_written_once_by_their_first_run() -> None:
    staff, coconut, queue = CountedStaffStore(), MemoryCoconut(), MemoryQueue()
    coconut.add_user("U-1", "u1@bank.example")

    outcome = await PeriodicCycle(staff, coconut, queue).run()

    assert await staff.get("U-1") is None, "left to the run"
    [request] = queue.requests()
    assert request.roster == Roster(email="u1@bank.example", calendar_sync=True)
    assert outcome.roster_changes == 1
    held = await StaffLease(staff, MINUTE).acquire("U-1", roster=request.roster)
    assert staff.writes == 1, "the lease's write creates the record"
    assert (held.record.roster.email, held.record.roster.calendar_sync) == (
        "u1@bank.example",
        True,
    )
    stored = await staff.get("U-1")
    assert stored is not None
    assert stored.roster == held.record.roster


async def test_a_known_staff_members_request_carries_no_roster() -> None:
    staff, coconut, queue = MemoryStaffStore(), MemoryCoconut(), MemoryQueue()
    coconut.add_user("U-1", "u1@bank.example")
    await PeriodicCycle(staff, coconut, queue).run()
    await first_runs(staff, queue)
    queue.messages.clear()

    outcome = await PeriodicCycle(staff, coconut, queue).run()

    [request] = queue.requests()
    assert request.roster is None
    assert outcome.roster_changes == 0


async def test_a_new_staff_member_with_calendar_sync_off_is_recorded_by_the_cycle() -> None:
    """No run will come for them, and the record is what says they are switched off."""
    staff, coconut, queue = MemoryStaffStore(), MemoryCoconut(), MemoryQueue()
    coconut.add_user("U-1", "u1@bank.example", calendar_sync=False)

    await PeriodicCycle(staff, coconut, queue).run()

    record = await staff.get("U-1")
    assert record is not None
    assert record.roster.calendar_sync is False
    assert queue.messages == []


async def test_a_record_created_after_the_read_keeps_its_fields_and_gets_the_roster() -> None:
    staff, coconut, queue = WebhookMeanwhile(), MemoryCoconut(), MemoryQueue()
    coconut.add_user("U-1", "u1@bank.example")
    coconut.add_user("U-2", "u2@bank.example")

    outcome = await PeriodicCycle(staff, coconut, queue).run()
    await first_runs(staff, queue)

    for staff_id, graph_id in (("U-1", "graph-U-1"), ("U-2", "")):
        record = await staff.get(staff_id)
        assert record is not None
        assert (record.roster.email, record.roster.calendar_sync) == (
            f"{staff_id.lower().replace('-', '')}@bank.example",
            True,
        )
        assert record.mailbox.user_id == graph_id
    assert outcome.roster_changes == 2
    assert sorted(r.staff_id for r in queue.requests()) == ["U-1", "U-2"]


async def test_a_large_roster_goes_out_in_batch_messages_spread_over_the_interval() -> None:
    """10,000 staff are 200 messages, not 10,000: the cycle's sends, and the workers'
    receives and deletes, are most of what a quiet cycle costs."""
    staff, coconut, queue = MemoryStaffStore(), MemoryCoconut(), MemoryQueue()
    for n in range(2 * STAFF_PER_MESSAGE + 1):
        coconut.add_user(f"U-{n:03d}", f"u{n}@bank.example")

    outcome = await PeriodicCycle(staff, coconut, queue).run()

    assert outcome.enqueued == 2 * STAFF_PER_MESSAGE + 1
    sizes = [len(unpacked(m.work)) for m in queue.messages]
    assert sizes == [STAFF_PER_MESSAGE, STAFF_PER_MESSAGE, 1]
    delays = [m.delay_seconds for m in queue.messages]
    assert delays[0] == 0
    assert delays == sorted(delays)
    assert 0 < delays[-1] <= outcome.enqueued / 100
    assert sorted(r.staff_id for r in queue.requests()) == [
        f"U-{n:03d}" for n in range(2 * STAFF_PER_MESSAGE + 1)
    ]
    assert {r.reason for r in queue.requests()} == {"timer"}


async def test_the_ops_roster_refresh_still_writes_new_staff_at_once() -> None:
    staff, coconut, queue = MemoryStaffStore(), MemoryCoconut(), MemoryQueue()
    coconut.add_user("U-1", "u1@bank.example")

    refresh = await PeriodicCycle(staff, coconut, queue).refresh_roster()

    record = await staff.get("U-1")
    assert record is not None
    assert record.roster.email == "u1@bank.example"
    assert refresh.unrecorded == {}
