"""The one kind of queued work: "bring staff member X in step" (both directions), or, on an
administrator's request, "disconnect staff member X" (done by the same worker under the lease)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sync.staff_record import Roster
from sync.tracing import current_traceparent

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
    # W3C trace context of the span that asked for the work (the webhook, notification, ops
    # command or timer cycle), so the worker's run joins that trace (sync.tracing). Taken from
    # the current span when the request is made (None outside one); kept when it is put back.
    # Messages sent before the field existed still parse (the worker reads them outside a span).
    traceparent: str | None = Field(default_factory=current_traceparent)
    # Coconut's roster entry of a staff member the timer cycle found with no record yet: the
    # run's lease creates the record with it (one write, where the cycle writing it first made
    # two). None on every other request.
    roster: Roster | None = None

    @property
    def continues_trace(self) -> bool:
        """Work asked for by one change (webhook, notification, ops) joins that change's trace;
        the timer's fan-out does not, or one cycle would be one trace of every mailbox."""
        return self.reason != "timer"

    def retried(self) -> StaffSyncRequest:
        """The same request, put back for later. It keeps its reason, `requested_at` and trace,
        so the latency measured when it finally lands covers every wait (webhook -> Exchange)
        and its run shows in the same trace."""
        return self.model_copy(update={"attempt": self.attempt + 1})
