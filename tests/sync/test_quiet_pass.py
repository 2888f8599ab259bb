"""A timer pass that finds nothing is stored in one write of the staff record, without the lease
(`sync.quiet_pass`); anything that is not quiet gets the regular pass, under the lease."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from sync.imports.busy_time import external_id_for
from sync.lease import StaffLease
from sync.ports import MailboxUser
from sync.staff_record import Roster, StaffChanges, StaffRecord
from tests.sync.payloads import appointment_at, tomorrow
from tests.sync.test_worker import MAIL, STAFF, RowsRead, Service, dentist, sync


class Writes:
    """Counts the writes of staff records."""

    def __init__(self, service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        store = service.world.staff
        merge: Callable[..., Awaitable[str]] = store.merge
        create: Callable[..., Awaitable[StaffRecord]] = store.create

        async def counted_merge(*args: object, **kwargs: object) -> str:
            self.count += 1
            return await merge(*args, **kwargs)

        async def counted_create(*args: object, **kwargs: object) -> StaffRecord:
            self.count += 1
            return await create(*args, **kwargs)

        monkeypatch.setattr(store, "merge", counted_merge)
        monkeypatch.setattr(store, "create", counted_create)


async def settled(service: Service) -> MailboxUser:
    """A staff member on the roster with one appointment written and every change since seen:
    the next timer pass has nothing to do."""
    user = service.mailbox()
    await service.world.staff.create(
        STAFF, StaffChanges(roster=Roster(email=MAIL, calendar_sync=True))
    )
    await service.deliver(appointment_at(1, starts=tomorrow()))
    await service.run()  # the event, the listings and a first delta round
    await service.run(sync("timer"))  # the round that lists the event just made
    return user


async def test_a_quiet_timer_pass_is_one_write_and_takes_no_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = Service()
    await settled(service)
    before = await service.record()
    writes = Writes(service, monkeypatch)
    requests = service.world.calendar.requests

    report = await service.run(sync("timer"))

    assert report.outcome == "synced"
    assert writes.count == 1
    assert service.world.calendar.requests - requests == 1, "one delta page"
    after = await service.record()
    assert after.lease == before.lease, "never taken"
    assert after.cursor.last_import_at != before.cursor.last_import_at, "the round is kept"
    assert after.outcome.last_sync_at is not None
    assert before.outcome.last_sync_at is not None
    assert after.outcome.last_sync_at > before.outcome.last_sync_at
    assert (after.outcome.status, after.outcome.event_count) == ("Syncing", 1)


async def test_a_timer_pass_whose_round_lists_an_outlook_change_imports_it() -> None:
    service = Service()
    user = await settled(service)
    before = await service.record()
    own = service.world.calendar.person_create(user.id, dentist())

    report = await service.run(sync("timer"))

    assert report.outcome == "synced"
    assert external_id_for(own) in service.world.coconut.blocks[STAFF]
    assert (await service.record()).lease.until != before.lease.until, "under the lease"


async def test_a_timer_pass_with_a_row_waiting_writes_it() -> None:
    """The webhook's own request is lost: the timer's pass is the safety net."""
    service = Service()
    user = await settled(service)
    await service.deliver(appointment_at(1, coconut_id="A-1002", starts=tomorrow()))
    service.world.queue.messages.clear()

    report = await service.run(sync("timer"))

    assert report.outcome == "synced"
    assert sorted(str(key) for key in service.events(user)) == [
        "appointment:A-1001",
        "appointment:A-1002",
    ]
    assert await service.pending() == []


async def test_a_record_another_process_wrote_since_gets_the_regular_pass() -> None:
    service = Service()
    user = await settled(service)
    other = StaffLease(service.world.staff, timedelta(minutes=1), owner="worker-other")
    held = await other.acquire(STAFF)
    await held.give_up(StaffChanges())
    given_back = await service.record()
    own = service.world.calendar.person_create(user.id, dentist())

    report = await service.run(sync("timer"))

    assert report.outcome == "synced"
    after = await service.record()
    assert after.lease.until != given_back.lease.until, "under the lease"
    assert external_id_for(own) in service.world.coconut.blocks[STAFF]


async def test_a_quiet_pass_reads_none_of_the_rows_of_the_appointments_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a quiet pass costs does not grow with the staff member's calendar."""
    service = Service()
    await settled(service)
    for number in range(2, 12):
        await service.deliver(appointment_at(1, coconut_id=f"A-{1000 + number}", starts=tomorrow()))
    await service.run()
    await service.run(sync("timer"))  # the round that lists the events just made
    reads = RowsRead(service, monkeypatch)
    writes = Writes(service, monkeypatch)

    report = await service.run(sync("timer"))

    assert report.outcome == "synced"
    assert writes.count == 1, "the quiet pass, not the regular one"
    assert reads.item_keys == []
    assert (await service.record()).outcome.event_count == 11
