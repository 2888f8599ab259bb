"""The memory stores' own controls and rules that the contract suite does not reach through the
ports: the staff records' clock (`advance`), the queue's delays and `take`, and the item links'
pending marks under compare-and-swap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.export.planning import EventLink
from sync.memory.storage import MemoryItemLinks, MemoryQueue, MemoryStaffStore
from sync.memory.world import MemoryWorld
from sync.ports import ItemFailure
from sync.staff_record import Lease, Outcome, Rerun, StaffChanges
from sync.work import StaffSyncRequest, unpacked

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_advance_moves_every_deadline_of_every_record_and_nothing_else() -> None:
    staff = MemoryStaffStore()
    await staff.create(
        "U-1",
        StaffChanges(
            lease=Lease(owner="worker-1", until=NOON),
            rerun=Rerun(requested=True, wakeup_at=NOON),
            outcome=Outcome(status="Syncing", throttled_until=NOON, at=NOON),
        ),
    )
    await staff.create("U-2", StaffChanges(lease=Lease(owner="worker-2", until=NOON)))
    created = await staff.get("U-1")
    assert created is not None

    staff.advance(90)

    one, two = await staff.get("U-1"), await staff.get("U-2")
    assert one is not None
    assert two is not None
    earlier = NOON - timedelta(seconds=90)
    assert (one.lease.until, one.rerun.wakeup_at, one.outcome.throttled_until) == (
        earlier,
        earlier,
        earlier,
    )
    assert two.lease.until == earlier
    assert one.outcome.at == NOON, "what happened stays when it happened"
    assert (one.lease.owner, one.rerun.requested, one.etag) == ("worker-1", True, created.etag)


async def test_a_record_without_deadlines_is_left_as_it_is() -> None:
    staff = MemoryStaffStore()
    created = await staff.create("U-1", StaffChanges(outcome=Outcome(status="Warning")))

    staff.advance(60)

    assert await staff.get("U-1") == created


async def test_the_queue_keeps_messages_in_order_with_the_delay_each_asked_for() -> None:
    queue = MemoryQueue()
    await queue.send(StaffSyncRequest(staff_id="U-9", reason="retry"), delay_seconds=-5)
    await queue.request_sync(["U-2", "U-1", "U-2"], "webhook", full=True)
    await queue.request_sync_spread(
        ["U-4", "U-3", "U-5", "U-6", "U-7"], "timer", spread_seconds=3, per_message=2
    )

    assert [
        (m.request.staff_id, m.request.reason, m.delay_seconds) for m in queue.messages[:3]
    ] == [
        ("U-9", "retry", 0.0),
        ("U-1", "webhook", 0.0),
        ("U-2", "webhook", 0.0),
    ]
    batches = [(m.work, m.delay_seconds) for m in queue.messages[3:]]
    assert [
        ([r.staff_id for r in unpacked(work)], work.reason, delay) for work, delay in batches
    ] == [(["U-3", "U-4"], "timer", 0.0), (["U-5", "U-6"], "timer", 1.0), (["U-7"], "timer", 2.0)]
    assert [m.request.full for m in queue.messages[1:3]] == [True, True]
    assert queue.take_request(2).staff_id == "U-2"
    assert queue.take_request().staff_id == "U-9"
    assert [r.staff_id for r in queue.requests()] == ["U-1", "U-3", "U-4", "U-5", "U-6", "U-7"]


async def test_spreading_nobody_sends_nothing() -> None:
    queue = MemoryQueue()

    await queue.request_sync_spread([], "timer", spread_seconds=60)

    assert queue.messages == []


async def test_a_mark_after_the_read_keeps_the_row_pending_and_the_link_written() -> None:
    links = MemoryItemLinks()
    await links.mark_pending(["U-1"], "appointment:1")
    [row] = await links.rows("U-1")
    await links.mark_pending(["U-1"], "appointment:1")  # a newer delivery

    saved = await links.save_link(
        row, EventLink(item_key="appointment:1", event_id="ev-1"), done=True
    )

    [now] = await links.rows("U-1")
    assert (now.pending, now.link.event_id) == (True, "ev-1")
    assert (saved.pending, saved.keep_pending) == (True, True)
    # From then on this run never clears the mark, whatever ETag its writes return.
    await links.save_link(saved, EventLink(item_key="appointment:1", event_id="ev-2"), done=True)
    assert [r.pending for r in await links.rows("U-1")] == [True]
    assert await links.forget(saved) is False
    assert await links.pending_by_staff() == {"U-1": 1}


async def test_a_mark_keeps_the_link_and_a_clean_save_clears_it() -> None:
    links = MemoryItemLinks()
    await links.mark_pending(["U-1", "U-2"], "appointment:1")
    [row] = await links.rows("U-1")
    saved = await links.save_link(
        row, EventLink(item_key="appointment:1", event_id="ev-1"), done=True
    )
    assert saved.pending is False

    await links.mark_pending(["U-1"], "appointment:1")

    [marked] = await links.rows("U-1")
    assert (marked.pending, marked.link.event_id) == (True, "ev-1")
    assert await links.pending_by_staff() == {"U-1": 1, "U-2": 1}


async def test_advance_brings_a_failing_item_due_and_leaves_when_it_began() -> None:
    links = MemoryItemLinks()
    await links.mark_pending(["U-1"], "appointment:1")
    [row] = await links.rows("U-1")
    failure = ItemFailure(
        count=2,
        since=NOON,
        reason="503 ErrorInternalServerError",
        retry_at=NOON + timedelta(seconds=30),
    )
    await links.record_failure(row, failure)
    [failing] = await links.rows("U-1")
    assert failing.failure == failure
    assert not failing.due(NOON + timedelta(seconds=29))

    links.advance(30)

    [later] = await links.rows("U-1")
    assert later.failure is not None
    assert (later.failure.retry_at, later.failure.since) == (NOON, NOON)
    assert (later.failure.count, later.pending) == (2, True)
    assert later.due(NOON)


async def test_the_world_moves_every_store_s_clock_at_once() -> None:
    world = MemoryWorld()
    await world.staff.create("U-1", StaffChanges(lease=Lease(owner="w", until=NOON)))
    await world.links.mark_pending(["U-1"], "appointment:1")
    [row] = await world.links.rows("U-1")
    await world.links.record_failure(
        row, ItemFailure(count=1, since=NOON, reason="429", retry_at=NOON)
    )

    world.advance(10)

    record = await world.staff.get("U-1")
    [later] = await world.links.rows("U-1")
    assert record is not None
    assert later.failure is not None
    assert record.lease.until == later.failure.retry_at == NOON - timedelta(seconds=10)
