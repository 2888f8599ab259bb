"""A batch message's runs: each staff member's on its own, a failure put back alone."""

from __future__ import annotations

import pytest

from sync.batch_runs import run_batch
from sync.errors import StorageUnavailable
from sync.memory.storage import MemoryQueue
from sync.staff_record import Roster
from sync.work import BatchedStaff, StaffSyncBatch, StaffSyncRequest
from tests.sync.conftest import Exported

NEW = Roster(email="new@bank.example", calendar_sync=True)
RETRY_AFTER = 5.0


def timer_batch(*staff_ids: str) -> StaffSyncBatch:
    return StaffSyncBatch(
        staff=[BatchedStaff(staff_id=s, roster=NEW if s == "U-2" else None) for s in staff_ids],
        reason="timer",
    )


class Runs:
    """The worker's `run`, failing for the staff named in `failing`."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.done: list[str] = []

    async def __call__(self, request: StaffSyncRequest) -> None:
        if request.staff_id in self.failing:
            raise RuntimeError("a bug that only this staff member's data meets")
        self.done.append(request.staff_id)


async def test_every_staff_member_of_a_batch_is_run() -> None:
    runs, queue = Runs(), MemoryQueue()

    put_back = await run_batch(
        runs, queue, retry_after=RETRY_AFTER, batch=timer_batch("U-1", "U-2", "U-3")
    )

    assert sorted(runs.done) == ["U-1", "U-2", "U-3"]
    assert put_back == 0
    assert queue.messages == []


async def test_a_failing_run_is_put_back_on_its_own_and_the_others_go_on() -> None:
    runs, queue = Runs("U-2"), MemoryQueue()

    put_back = await run_batch(
        runs, queue, retry_after=RETRY_AFTER, batch=timer_batch("U-1", "U-2", "U-3")
    )

    assert sorted(runs.done) == ["U-1", "U-3"]
    assert put_back == 1
    [message] = queue.messages
    assert message.delay_seconds == RETRY_AFTER
    retry = message.request
    assert (retry.staff_id, retry.reason, retry.attempt, retry.roster) == ("U-2", "timer", 1, NEW)


async def test_when_the_failed_run_cannot_be_put_back_the_message_fails_whole() -> None:
    """The host then retries the batch: the others run twice, which changes nothing."""
    runs, queue = Runs("U-1"), MemoryQueue()
    queue.faults.fail_next("storage", StorageUnavailable("storage answered 503"))

    with pytest.raises(StorageUnavailable):
        await run_batch(runs, queue, timer_batch("U-1", "U-2"), retry_after=RETRY_AFTER)

    assert runs.done == ["U-2"]
    assert queue.messages == []


async def test_each_run_of_a_batch_has_a_span_with_its_staff_member_and_failures_are_logged(
    exported: Exported,
) -> None:
    """A staff member's runs are found by `staff_id` whichever message brought them; the log
    of a failed run names the exception's type only (its message may quote a payload)."""
    runs, queue = Runs("U-2"), MemoryQueue()

    await run_batch(runs, queue, timer_batch("U-1", "U-2"), retry_after=RETRY_AFTER)

    spans = [s for s in exported.spans.get_finished_spans() if s.name == "staff_sync"]
    assert sorted(
        (str((s.attributes or {})["staff_id"]), (s.attributes or {})["trigger"]) for s in spans
    ) == [("U-1", "timer"), ("U-2", "timer")]
    [failed_span] = [s for s in spans if (s.attributes or {})["staff_id"] == "U-2"]
    assert failed_span.status.description == "RuntimeError"
    assert failed_span.events == (), "no exception event: its message may quote a payload"
    [failed] = [
        r.log_record
        for r in exported.records.get_finished_logs()
        if (r.log_record.attributes or {}).get("outcome") == "failed"
    ]
    attributes = failed.attributes or {}
    assert (attributes["staff_id"], attributes["detail"]) == ("U-2", "RuntimeError")
    assert "only this staff member" not in str(failed.body)
