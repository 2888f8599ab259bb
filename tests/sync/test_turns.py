"""Runs for one staff member in one process take turns; a plain request that arrives while
another waits its turn is covered by it, and a pass that began while they waited answers them
all (`sync.turns`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sync.turns import LocalTurns, Turn, covers
from sync.work import StaffSyncRequest
from tests.sync.payloads import appointment_at, tomorrow
from tests.sync.test_worker import STAFF, Service


def request(reason: str = "webhook", staff_id: str = STAFF, **fields: object) -> StaffSyncRequest:
    return StaffSyncRequest.model_validate({"staff_id": staff_id, "reason": reason, **fields})


async def test_a_second_run_waits_for_the_first_and_a_third_is_covered_by_it() -> None:
    turns, order = LocalTurns(), []
    first, second, third = request(), request(), request()
    release = asyncio.Event()

    handed: dict[str, Turn] = {}

    async def run(r: StaffSyncRequest, name: str) -> None:
        async with turns.turn(r) as turn:
            handed[name] = turn
            order.append(f"{name} starts")
            if r is first:
                await release.wait()
            order.append(f"{name} ends")

    running = asyncio.create_task(run(first, "first"))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(run(second, "second"))
    await asyncio.sleep(0)

    assert turns.covered(third), "the waiting run reads every mark made before it starts"
    assert not turns.covered(request("timer")), "a timer pass imports; a webhook pass does not"
    assert not turns.covered(request(full=True))
    assert not turns.covered(request(staff_id="U-other"))
    release.set()
    await asyncio.gather(running, waiting)
    assert order == ["first starts", "first ends", "second starts", "second ends"]
    assert handed == {"first": Turn([]), "second": Turn([third])}, (
        "the second run answers for the third; nobody answered it before"
    )
    assert not turns.covered(third), "nobody waits any more"


async def test_a_pass_begun_while_requests_waited_answers_them_unless_more_came_since() -> None:
    turns = LocalTurns()
    first, second, third, late = request("timer"), request(), request(), request()
    release = asyncio.Event()
    handed: dict[str, Turn] = {}

    async def run(r: StaffSyncRequest, name: str) -> None:
        async with turns.turn(r) as turn:
            handed[name] = turn
            if r is first:
                await release.wait()

    async def second_waits() -> asyncio.Task[None]:
        waiting = asyncio.create_task(run(second, "second"))
        await asyncio.sleep(0)
        assert turns.covered(third)
        return waiting

    # The first run's pass begins after the second and third were asked for: it answers both.
    running = asyncio.create_task(run(first, "first"))
    await asyncio.sleep(0)
    waiting = await second_waits()
    sighting = turns.sighting(STAFF)
    turns.answer(first, sighting)
    release.set()
    await asyncio.gather(running, waiting)
    assert handed["second"] == Turn([third], answered=True)

    # A request covered after the pass began was not read by it: the second run still runs.
    release.clear()
    running = asyncio.create_task(run(first, "first"))
    await asyncio.sleep(0)
    waiting = await second_waits()
    sighting = turns.sighting(STAFF)
    assert turns.covered(late)
    turns.answer(first, sighting)
    release.set()
    await asyncio.gather(running, waiting)
    assert handed["second"] == Turn([third, late], answered=False)


async def test_a_disconnect_answers_nobody_and_a_full_request_is_never_answered() -> None:
    turns = LocalTurns()
    release = asyncio.Event()
    handed: dict[str, Turn] = {}

    async def run(r: StaffSyncRequest, name: str) -> None:
        async with turns.turn(r) as turn:
            handed[name] = turn
            if name == "first":
                await release.wait()

    running = asyncio.create_task(run(request(action="disconnect"), "first"))
    await asyncio.sleep(0)
    plain = request()
    waiting = asyncio.create_task(run(plain, "second"))
    await asyncio.sleep(0)
    turns.answer(request(action="disconnect"), turns.sighting(STAFF))
    release.set()
    await asyncio.gather(running, waiting)
    assert not handed["second"].answered, "a disconnect writes no pending rows"

    release.clear()
    running = asyncio.create_task(run(request(), "first"))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(run(request(full=True), "second"))
    await asyncio.sleep(0)
    assert turns.sighting(STAFF) is None, "a full resync does more than the pending rows"
    release.set()
    await asyncio.gather(running, waiting)
    assert not handed["second"].answered


async def test_a_started_run_covers_nothing() -> None:
    """It may have read the marks already: a request now waits for the next turn."""
    turns = LocalTurns()
    async with turns.turn(request()):
        assert not turns.covered(request())


def test_only_a_plain_sync_of_pending_rows_is_covered_and_not_by_a_repair() -> None:
    assert covers(request("timer"), request("webhook"))
    assert covers(request("webhook"), request("retry"))
    assert not covers(request("reconcile"), request("webhook"))
    assert not covers(request("webhook"), request("notification"))
    assert not covers(request("webhook"), request("webhook", action="disconnect"))
    assert not covers(request("webhook", action="disconnect"), request("webhook"))


async def test_requests_that_meet_in_one_process_write_every_event_without_a_wake_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three deliveries' requests run at once in one worker, the first still writing when the
    others arrive: the second waits its turn (no lease met, nothing put back), the third is
    covered by it, and every booking is an event."""
    service = Service()
    user = service.mailbox()
    create = service.world.calendar.create_event

    async def slow_create(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.01)  # Graph takes a while: the other requests arrive meanwhile
        return await create(*args, **kwargs)

    monkeypatch.setattr(service.world.calendar, "create_event", slow_create)
    for number in range(3):
        await service.deliver(appointment_at(1, coconut_id=f"A-{number}", starts=tomorrow()))
    requests = [service.world.queue.take_request() for _ in range(3)]

    reports = await asyncio.gather(*(service.worker.run(r) for r in requests))

    assert [r.outcome for r in reports] == ["synced", "synced", "deferred"]
    assert sorted(e or "" for e in service.events(user)) == [
        "appointment:A-0",
        "appointment:A-1",
        "appointment:A-2",
    ]
    assert service.world.queue.messages == [], "nothing put back, no wake-up"
    record = await service.record()
    assert record.lease.owner == ""
    assert not record.rerun.requested


async def test_requests_waiting_when_a_pass_begins_are_answered_by_it_without_a_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Storage is slow to give the first run its lease: the other two requests arrive before
    its pass reads the rows. That pass writes all three bookings, and the waiting run gives
    its turn up without a pass of its own."""
    service = Service()
    user = service.mailbox()
    for number in range(3):
        await service.deliver(appointment_at(1, coconut_id=f"A-{number}", starts=tomorrow()))
    requests = [service.world.queue.take_request() for _ in range(3)]

    def slow(write: Any) -> Any:
        async def slowly(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.01)
            return await write(*args, **kwargs)

        return slowly

    for write in ("create", "merge"):  # the lease is taken by one or the other
        monkeypatch.setattr(service.world.staff, write, slow(getattr(service.world.staff, write)))

    reports = await asyncio.gather(*(service.worker.run(r) for r in requests))

    assert [r.outcome for r in reports] == ["synced", "synced", "deferred"]
    assert reports[0].export is not None
    assert reports[0].export.created == 3, "the first pass wrote every booking"
    assert reports[1].export is None, "answered: no pass of its own"
    assert sorted(e or "" for e in service.events(user)) == [
        "appointment:A-0",
        "appointment:A-1",
        "appointment:A-2",
    ]
    assert service.world.queue.messages == []
    assert not [r for r in await service.world.links.rows(STAFF) if r.pending]
    assert (await service.record()).lease.owner == ""
