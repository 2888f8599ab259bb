"""A batch message's runs (`sync.work.StaffSyncBatch`): every staff member's run on its own.

A run that fails does not fail the message: the message would come back with every staff member
in it, and after the last attempt take them all to the poison queue. The failed staff member's
request is put back on its own instead, so its retries, and its poison message if it comes to
that, are its own. Only if that cannot be sent (storage down) does the message fail, and come
back whole: syncing the others twice is harmless (level-triggered), and a member put back by an
earlier attempt gets one more message of its own, which its run shrugs off as well.

Each run has a span of its own (`staff_sync`, a child of the message's `staff_worker` span) with
the dimensions a single request's message span has, so a staff member's runs are found the same
way whichever message brought them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from sync.concurrency import all_settled
from sync.ports import WorkQueue
from sync.telemetry import log_operation
from sync.tracing import service_span
from sync.work import StaffSyncBatch, StaffSyncRequest, work_attributes

log = logging.getLogger("sync.staff")

# Runs of one batch at a time. The host runs up to batchSize + newBatchThreshold (24) messages
# at once besides: at most about 100 runs per instance, when a backlog of batches is visible.
BATCH_CONCURRENCY: Final = 4


async def run_batch(
    run: Callable[[StaffSyncRequest], Awaitable[object]],
    queue: WorkQueue,
    batch: StaffSyncBatch,
    *,
    retry_after: float,
) -> int:
    """Run every request of the batch; how many failed and were put back on their own (to be
    tried again after `retry_after` seconds: the worker's first back-off)."""
    slots = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def one(request: StaffSyncRequest) -> bool:
        async with slots:
            try:
                with service_span("staff_sync", attributes=work_attributes(request)):
                    await run(request)
                return False
            except Exception as failure:
                # Isolated to this staff member. (The memory world's `Crash` is an Exception
                # too: the put-back below raises it again, as every adapter of a crashed world.)
                log_operation(
                    log,
                    "staff sync failed in a batch; put back on its own",
                    operation="staff_sync",
                    outcome="failed",
                    level=logging.WARNING,
                    staff_id=request.staff_id,
                    trigger=request.reason,
                    # The type only, as on the span.
                    detail=type(failure).__name__,
                )
            await queue.send(request.retried(), delay_seconds=retry_after)
            return True

    put_back = await all_settled(one(request) for request in batch.requests())
    return sum(put_back)
