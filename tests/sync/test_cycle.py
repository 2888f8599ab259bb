"""The periodic cycle's roster refresh (over the memory stores)."""

from __future__ import annotations

from sync.cycle import PeriodicCycle
from sync.memory.coconut import MemoryCoconut
from sync.memory.storage import MemoryQueue, MemoryStaffStore
from sync.staff_record import Mailbox, StaffChanges, StaffRecord


class WebhookMeanwhile(MemoryStaffStore):
    """A webhook creates U-1's record just after the cycle has read the records."""

    async def all(self) -> list[StaffRecord]:
        records = await super().all()
        await self.create("U-1", StaffChanges(mailbox=Mailbox(user_id="graph-U-1")))
        return records


async def test_a_record_created_after_the_read_keeps_its_fields_and_gets_the_roster() -> None:
    staff, coconut, queue = WebhookMeanwhile(), MemoryCoconut(), MemoryQueue()
    coconut.add_user("U-1", "u1@bank.example")
    coconut.add_user("U-2", "u2@bank.example")

    outcome = await PeriodicCycle(staff, coconut, queue).run()

    record = await staff.get("U-1")
    assert record is not None
    assert (record.roster.email, record.roster.calendar_sync) == ("u1@bank.example", True)
    assert record.mailbox.user_id == "graph-U-1"
    assert outcome.roster_changes == 2
    assert sorted(m.request.staff_id for m in queue.messages) == ["U-1", "U-2"]
