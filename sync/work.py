"""The one kind of queued work: "bring staff member X in step" (both directions), or, on an
administrator's request, "disconnect staff member X" (done by the same worker under the lease)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# What the worker does: keep the staff member in step, or remove everything the service put in
# their calendar and in Coconut and stop (sync.ops.disconnect).
SyncAction = Literal["sync", "disconnect"]

# Why the sync was asked for; for telemetry and the ops view (never personal data).
SyncReason = Literal[
    "webhook",
    "timer",
    "notification",
    "resync",
    "retry",
    "throttled",
    "lease_busy",
    "ops",
    "reconcile",
]


class StaffSyncRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    staff_id: str = Field(min_length=1, max_length=255)
    reason: SyncReason
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # A full pass: every item re-checked and a fresh import window (ops "resync").
    full: bool = False
    action: SyncAction = "sync"
    # How many times this request was put back (throttled, lease busy); for telemetry.
    attempt: int = Field(default=0, ge=0)

    def retried(self) -> StaffSyncRequest:
        """The same request, put back for later. It keeps its reason and `requested_at`, so the
        latency measured when it finally lands covers every wait (webhook -> Exchange)."""
        return self.model_copy(update={"attempt": self.attempt + 1})
