"""`WorkQueue`: requests to bring a staff member in step, as the queue-triggered worker receives
them.

On Azure the worker is the Functions host, which reads message bodies as base64; a request put
with a delay must stay out of sight until then (a throttled mailbox, a busy lease, a spread-out
timer cycle), and come back whole: the worker decides on its reason, action and attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sync.staff_record import Roster
from sync.work import StaffSyncRequest
from tests.contract.adapters import QueueSide

# A queue's delays are whole seconds on Azure: a wait this long covers a one-second delay.
PAST_ONE_SECOND = 1.5


def by_staff(requests: list[StaffSyncRequest]) -> list[StaffSyncRequest]:
    return sorted(requests, key=lambda request: request.staff_id)


async def test_a_request_sent_is_received_whole(work_queue: QueueSide) -> None:
    request = StaffSyncRequest(
        staff_id=work_queue.staff_id(),
        reason="ops",
        requested_at=datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=UTC),
        full=True,
        action="disconnect",
        attempt=3,
    )

    await work_queue.queue.send(request)

    assert await work_queue.received() == [request]


async def test_a_delayed_request_stays_out_of_sight_until_its_delay(
    work_queue: QueueSide,
) -> None:
    request = StaffSyncRequest(staff_id=work_queue.staff_id(), reason="throttled", attempt=1)

    await work_queue.queue.send(request, delay_seconds=1)

    assert await work_queue.received() == []
    await work_queue.wait(PAST_ONE_SECOND)
    assert await work_queue.received() == [request]


async def test_request_sync_puts_one_request_per_staff_member(work_queue: QueueSide) -> None:
    staff_ids = [work_queue.staff_id() for _ in range(3)]
    before = datetime.now(UTC)

    await work_queue.queue.request_sync([*staff_ids, staff_ids[0]], "webhook", full=True)

    received = by_staff(await work_queue.received())
    assert [r.staff_id for r in received] == sorted(staff_ids)
    for request in received:
        assert (request.reason, request.full, request.action, request.attempt) == (
            "webhook",
            True,
            "sync",
            0,
        )
        assert request.requested_at >= before


async def test_request_sync_spread_spreads_visibility_over_the_period(
    work_queue: QueueSide,
) -> None:
    """The timer's cycle asks for every staff member at once; their runs start spread out."""
    first, second = sorted(work_queue.staff_id() for _ in range(2))

    await work_queue.queue.request_sync_spread([second, first], "timer", spread_seconds=2)

    now = await work_queue.received()
    assert [(r.staff_id, r.reason, r.full) for r in now] == [(first, "timer", False)]
    await work_queue.wait(PAST_ONE_SECOND)
    later = await work_queue.received()
    assert [(r.staff_id, r.reason, r.full) for r in later] == [(second, "timer", False)]


async def test_a_batched_spread_puts_up_to_that_many_staff_in_a_message(
    work_queue: QueueSide,
) -> None:
    """The timer's cycle: batches, spread as the single requests are, each staff member's
    request coming back whole (with the roster entry of one who has no record yet)."""
    first, second, third = sorted(work_queue.staff_id() for _ in range(3))
    entry = Roster(email="new.staff@bank.example", calendar_sync=True)

    await work_queue.queue.request_sync_spread(
        [third, first, second], "timer", spread_seconds=2, rosters={third: entry}, per_message=2
    )

    now = await work_queue.received()
    assert [(r.staff_id, r.reason, r.roster) for r in now] == [
        (first, "timer", None),
        (second, "timer", None),
    ]
    await work_queue.wait(PAST_ONE_SECOND)
    later = await work_queue.received()
    assert [(r.staff_id, r.reason, r.roster) for r in later] == [(third, "timer", entry)]


async def test_nothing_sent_nothing_received(work_queue: QueueSide) -> None:
    await work_queue.queue.request_sync_spread([], "timer", spread_seconds=60)
    await work_queue.queue.request_sync([], "webhook")

    assert await work_queue.received() == []
