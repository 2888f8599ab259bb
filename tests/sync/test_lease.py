"""The staff lease (`sync.lease`): one worker per mailbox, on the staff record's ETag.

Each test runs on the memory store and on the Table Storage one (Azurite): the lease is nothing
but compare-and-swap writes of the record, so it holds only if both stores keep the contract
(`tests/contract/test_staff_store.py`). Lease durations are short and real: the lease reads the
system clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from sync.errors import ConcurrentUpdate
from sync.lease import HeldLease, LeaseHeld, StaffLease, take
from sync.memory.storage import MemoryStaffStore
from sync.ports import StaffStore
from sync.staff_record import Outcome, Roster, StaffChanges, StaffRecord
from sync.storage.staff_table import TableStaffStore
from tests.contract.adapters import BOTH, MEMORY, storage_account, unique

MINUTE = timedelta(minutes=1)
# Long enough for a few store round trips on Azurite, short enough to wait out in a test.
SHORT = timedelta(seconds=0.6)


class WriteLog:
    """A `StaffStore` that notes every write it passes on."""

    def __init__(self, store: StaffStore) -> None:
        self._store = store
        self.writes: list[StaffChanges] = []
        self.reads = 0

    async def get(self, staff_id: str) -> StaffRecord | None:
        self.reads += 1
        return await self._store.get(staff_id)

    async def all(self) -> list[StaffRecord]:
        return await self._store.all()

    async def create(self, staff_id: str, changes: StaffChanges) -> StaffRecord:
        self.writes.append(changes)
        return await self._store.create(staff_id, changes)

    async def merge(
        self, staff_id: str, changes: StaffChanges, *, if_match: str | None = None
    ) -> str:
        self.writes.append(changes)
        return await self._store.merge(staff_id, changes, if_match=if_match)


@pytest.fixture(params=BOTH)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[WriteLog]:
    if request.param == MEMORY:
        yield WriteLog(MemoryStaffStore())
        return
    async with storage_account(request) as account:
        yield WriteLog(TableStaffStore(account))


async def stored(store: StaffStore, staff_id: str) -> StaffRecord:
    record = await store.get(staff_id)
    assert record is not None
    return record


async def staff_member(store: StaffStore) -> str:
    staff_id = unique("U")
    await store.create(staff_id, StaffChanges(roster=Roster(email="kim@bank.example")))
    return staff_id


def done(reason: str = "") -> StaffChanges:
    """What a pass writes when it is over."""
    return StaffChanges(outcome=Outcome(status="Syncing", reason=reason, event_count=4))


# ----- taking the lease ----------------------------------------------------------------------


async def test_acquire_takes_the_lease(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    before = datetime.now(UTC)

    held = await StaffLease(store, MINUTE).acquire(staff_id)

    record = await stored(store, staff_id)
    assert record.lease.owner == held.owner
    assert record.lease.until is not None
    assert before + MINUTE <= record.lease.until <= datetime.now(UTC) + MINUTE
    assert held.record == record
    assert record.roster.email == "kim@bank.example"


async def test_acquire_creates_the_record_of_a_new_staff_member(store: WriteLog) -> None:
    staff_id = unique("U")

    held = await StaffLease(store, MINUTE).acquire(staff_id)

    assert (await stored(store, staff_id)).lease.owner == held.owner


async def test_a_held_lease_refuses_another_worker(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE, owner="worker-a").acquire(staff_id)

    with pytest.raises(LeaseHeld) as refused:
        await StaffLease(store, MINUTE, owner="worker-b").acquire(staff_id)

    record = await stored(store, staff_id)
    assert record.lease.owner == held.owner
    assert refused.value.until == record.lease.until


async def test_two_runs_in_one_process_do_not_share_a_lease(store: WriteLog) -> None:
    """Each acquire is its own owner: a second run of the same process is refused too."""
    staff_id = await staff_member(store)
    lease = StaffLease(store, MINUTE)
    await lease.acquire(staff_id)

    with pytest.raises(LeaseHeld):
        await lease.acquire(staff_id)


async def test_two_first_runs_racing_get_one_lease(store: WriteLog) -> None:
    staff_id = unique("U")

    outcomes = await asyncio.gather(
        *(StaffLease(store, MINUTE).acquire(staff_id) for _ in range(4)), return_exceptions=True
    )

    held = [o for o in outcomes if isinstance(o, HeldLease)]
    assert len(held) == 1
    assert all(isinstance(o, LeaseHeld) for o in outcomes if o not in held)
    assert (await stored(store, staff_id)).lease.owner == held[0].owner


async def test_the_owner_renewing_extends_its_lease(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, SHORT).acquire(staff_id)
    first = (await stored(store, staff_id)).lease.until
    assert first is not None
    await asyncio.sleep(0.05)

    renewed = await take(store, staff_id, held.owner, MINUTE)

    record = await stored(store, staff_id)
    assert record.lease.owner == held.owner
    assert record.lease.until is not None
    assert record.lease.until > first + timedelta(seconds=30)
    assert renewed == record


async def test_an_expired_lease_can_be_taken(store: WriteLog) -> None:
    """A worker that died blocks its mailbox only until its lease ends."""
    staff_id = await staff_member(store)
    await StaffLease(store, timedelta(milliseconds=100)).acquire(staff_id)
    await asyncio.sleep(0.2)

    held = await StaffLease(store, MINUTE).acquire(staff_id)

    assert (await stored(store, staff_id)).lease.owner == held.owner


async def test_a_lease_taken_from_a_holder_that_died_leaves_the_count_unsure(
    store: WriteLog,
) -> None:
    """The holder may have written events it never counted; a pass that let go did not."""
    staff_id, other = await staff_member(store), await staff_member(store)
    died = await StaffLease(store, timedelta(milliseconds=100)).acquire(staff_id)
    finished = await StaffLease(store, MINUTE).acquire(other)
    await finished.finish_pass(done())
    await asyncio.sleep(0.2)

    held = await StaffLease(store, MINUTE).acquire(staff_id)
    after_a_finished_pass = await StaffLease(store, MINUTE).acquire(other)

    assert held.owner != died.owner
    assert held.record.outcome.count_unsure
    assert (await stored(store, staff_id)).outcome.count_unsure
    assert not after_a_finished_pass.record.outcome.count_unsure


# ----- finishing a pass ----------------------------------------------------------------------


async def test_finish_pass_writes_the_outcome_and_releases_in_one_write(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE).acquire(staff_id)
    store.writes.clear()

    async with held:
        assert await held.finish_pass(done())

    record = await stored(store, staff_id)
    assert record.outcome == Outcome(status="Syncing", reason="", event_count=4)
    assert record.lease.owner == ""
    assert record.lease.until is not None
    assert record.lease.until <= datetime.now(UTC)
    assert len(store.writes) == 1
    assert store.writes[0].outcome == done().outcome
    assert store.writes[0].lease is not None
    assert store.writes[0].lease.owner == ""
    assert held.record == record
    # Free at once for the next worker.
    await StaffLease(store, MINUTE).acquire(staff_id)


async def test_a_pass_nobody_disturbed_finishes_without_a_read(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE).acquire(staff_id)
    store.reads = 0

    async with held:
        assert await held.finish_pass(done())

    assert store.reads == 0
    assert held.record == await stored(store, staff_id)


async def test_the_next_run_in_the_process_takes_the_lease_without_a_read(
    store: WriteLog,
) -> None:
    """The record as this process gave it back is the record as stored while its ETag holds."""
    staff_id = await staff_member(store)
    lease = StaffLease(store, MINUTE)
    async with await lease.acquire(staff_id) as first:
        assert await first.finish_pass(done("first run"))
    store.reads = 0

    second = await lease.acquire(staff_id)

    assert store.reads == 0
    record = await stored(store, staff_id)
    assert record.lease.owner == second.owner != first.owner
    assert second.record == record
    assert record.outcome.reason == "first run"


async def test_a_record_written_since_it_was_given_back_is_read_again(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    lease = StaffLease(store, MINUTE)
    async with await lease.acquire(staff_id) as first:
        assert await first.finish_pass(done("first run"))
    await store.merge(staff_id, done("another process"))

    second = await lease.acquire(staff_id)

    record = await stored(store, staff_id)
    assert record.lease.owner == second.owner
    assert second.record == record
    assert record.outcome.reason == "another process"


async def test_a_lease_taken_elsewhere_since_it_was_given_back_is_held(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    lease = StaffLease(store, MINUTE)
    async with await lease.acquire(staff_id) as first:
        assert await first.finish_pass(done())
    elsewhere = await StaffLease(store, MINUTE, owner="worker-elsewhere").acquire(staff_id)

    with pytest.raises(LeaseHeld):
        await lease.acquire(staff_id)

    assert (await stored(store, staff_id)).lease.owner == elsewhere.owner


async def test_a_rerun_requested_during_the_pass_keeps_the_lease_for_one_more(
    store: WriteLog,
) -> None:
    """A sync asked for while the mailbox was busy: the holder writes what it did, consumes
    the request, keeps the lease and makes one more pass from the record as just written."""
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE).acquire(staff_id)
    wake_at = datetime.now(UTC) + MINUTE

    async with held:
        assert await StaffLease(store, MINUTE).request_rerun(staff_id, wake_at) == "wake"

        assert not await held.finish_pass(done("first pass"))

        record = await stored(store, staff_id)
        assert record.outcome.reason == "first pass"
        assert record.lease.owner == held.owner
        assert not record.rerun.requested
        assert held.record == record

        assert await held.finish_pass(done("second pass"))

    record = await stored(store, staff_id)
    assert (record.outcome.reason, record.lease.owner) == ("second pass", "")


async def test_request_rerun_asks_for_a_wake_up_only_when_none_is_due_by_then(
    store: WriteLog,
) -> None:
    """Each busy request asks the holder for one more pass; a wake-up (in case the holder
    died) is scheduled only when none is due at or after the time asked for."""
    staff_id = await staff_member(store)
    lease = StaffLease(store, MINUTE)
    await lease.acquire(staff_id)
    soon, later = datetime.now(UTC) + MINUTE, datetime.now(UTC) + 2 * MINUTE

    assert await lease.request_rerun(staff_id, soon) == "wake"
    assert await lease.request_rerun(staff_id, soon) == "asked"
    assert await lease.request_rerun(staff_id, soon - timedelta(seconds=5)) == "asked"
    assert await lease.request_rerun(staff_id, later) == "wake"

    record = await stored(store, staff_id)
    assert record.rerun.requested
    assert record.rerun.wakeup_at == later


async def test_a_rerun_requested_again_after_one_was_consumed_is_kept(store: WriteLog) -> None:
    """The wake-up already scheduled still covers it, but the request itself is written."""
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE).acquire(staff_id)
    lease = StaffLease(store, MINUTE)
    wake_at = datetime.now(UTC) + MINUTE
    async with held:
        await lease.request_rerun(staff_id, wake_at)
        assert not await held.finish_pass(done())

        assert await lease.request_rerun(staff_id, wake_at) == "asked"

        assert (await stored(store, staff_id)).rerun.requested
        assert not await held.finish_pass(done())
        assert await held.finish_pass(done())


async def test_request_rerun_of_a_staff_member_never_seen(store: WriteLog) -> None:
    staff_id = unique("U")
    wake_at = datetime.now(UTC) + MINUTE

    assert await StaffLease(store, MINUTE).request_rerun(staff_id, wake_at) == "free"

    assert await store.get(staff_id) is None, "no record is made for a request alone"


async def test_a_pass_that_lost_its_lease_still_writes_what_it_found(store: WriteLog) -> None:
    """Its lease ran out and another worker took it: the outcome is written, the other
    worker's lease is left alone."""
    staff_id = await staff_member(store)
    held = await StaffLease(store, timedelta(milliseconds=100)).acquire(staff_id)
    await asyncio.sleep(0.2)
    other = await StaffLease(store, MINUTE).acquire(staff_id)

    assert await held.finish_pass(done("late pass"))

    record = await stored(store, staff_id)
    assert (record.outcome.reason, record.lease.owner) == ("late pass", other.owner)


# ----- giving up -----------------------------------------------------------------------------


async def test_give_up_releases_and_writes_the_changes(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE).acquire(staff_id)

    await held.give_up(StaffChanges(outcome=Outcome(status="Error", reason="Graph refused")))

    record = await stored(store, staff_id)
    assert (record.outcome.status, record.outcome.reason) == ("Error", "Graph refused")
    assert record.lease.owner == ""


async def test_give_up_leaves_a_lease_taken_by_another_alone(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, timedelta(milliseconds=100)).acquire(staff_id)
    await asyncio.sleep(0.2)
    other = await StaffLease(store, MINUTE).acquire(staff_id)

    await held.give_up(StaffChanges(outcome=Outcome(status="Error", reason="late failure")))

    record = await stored(store, staff_id)
    assert record.outcome.reason == "late failure"
    assert record.lease.owner == other.owner


async def test_give_up_twice_writes_once(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE).acquire(staff_id)
    await held.give_up(StaffChanges())
    store.writes.clear()

    await held.give_up(StaffChanges(outcome=Outcome(status="Error")))

    assert store.writes == []


async def test_leaving_without_finishing_gives_the_lease_back(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, MINUTE).acquire(staff_id)

    with pytest.raises(ConcurrentUpdate):
        async with held:
            raise ConcurrentUpdate("a pass failed")

    assert (await stored(store, staff_id)).lease.owner == ""
    await StaffLease(store, MINUTE).acquire(staff_id)


async def test_leaving_quietly_without_finishing_gives_the_lease_back(store: WriteLog) -> None:
    staff_id = await staff_member(store)

    async with await StaffLease(store, MINUTE).acquire(staff_id):
        pass

    assert (await stored(store, staff_id)).lease.owner == ""


# ----- renewal -------------------------------------------------------------------------------


async def test_renewal_keeps_a_long_pass_s_lease_alive(store: WriteLog) -> None:
    staff_id = await staff_member(store)
    held = await StaffLease(store, SHORT).acquire(staff_id)

    async with held:
        await asyncio.sleep(SHORT.total_seconds() * 2.5)

        with pytest.raises(LeaseHeld):
            await StaffLease(store, MINUTE).acquire(staff_id)
        record = await stored(store, staff_id)
        assert record.lease.owner == held.owner
        assert record.lease.until is not None
        assert record.lease.until > datetime.now(UTC)
        assert await held.finish_pass(done())

    # Renewal stopped with the pass: nothing takes the released lease back afterwards.
    await asyncio.sleep(SHORT.total_seconds() / 2)
    assert (await stored(store, staff_id)).lease.owner == ""
    await StaffLease(store, MINUTE).acquire(staff_id)


async def test_renewal_outlasts_rerun_requests_landing_meanwhile(store: WriteLog) -> None:
    """A renewal that loses its swap to a rerun request tries again at once."""
    staff_id = await staff_member(store)
    held = await StaffLease(store, SHORT).acquire(staff_id)
    lease = StaffLease(store, MINUTE)

    async with held:
        for step in range(10):
            await lease.request_rerun(staff_id, datetime.now(UTC) + timedelta(seconds=step + 1))
            await asyncio.sleep(SHORT.total_seconds() / 5)

        assert (await stored(store, staff_id)).lease.owner == held.owner
        assert not await held.finish_pass(done())
        assert await held.finish_pass(done())


async def test_a_request_after_the_holder_let_go_is_told_the_mailbox_is_free(
    store: WriteLog,
) -> None:
    """Nobody would see a rerun asked of a lease given back: the request runs at once instead
    of waiting for the lease's end, and nothing is written."""
    staff_id = await staff_member(store)
    lease = StaffLease(store, MINUTE)
    async with await lease.acquire(staff_id) as held:
        assert await held.finish_pass(done())
    writes = len(store.writes)

    assert await lease.request_rerun(staff_id, datetime.now(UTC) + MINUTE) == "free"

    assert len(store.writes) == writes
    assert not (await stored(store, staff_id)).rerun.requested
