"""The gauges the timer reports each cycle: staff by status, and the poison queue's length
(Azure Storage metrics give no per-queue depth; the poison-queue alert reads this gauge)."""

from __future__ import annotations

import logging

from sync.ops.poison import PoisonQueue
from sync.ops.status import StatusView
from sync.telemetry import log_operation, report_poison_queue_length, report_staff_by_status

log = logging.getLogger("sync.ops.health")


async def report_health(view: StatusView, poison: PoisonQueue) -> dict[str, int]:
    """Measure and report; the counts by status plus `poison` (for the log and tests)."""
    counts = await view.counts()
    length = await poison.length()
    report_staff_by_status(counts)
    report_poison_queue_length(length)
    log_operation(
        log,
        "sync health",
        operation="health",
        outcome="ok",
        poison_queue_length=length,
        **{f"staff_{status.lower()}": count for status, count in counts.items()},
    )
    return {**counts, "poison": length}
