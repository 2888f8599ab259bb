"""Queued work: "bring staff member X in step" (both directions), or, on an administrator's
request, "disconnect staff member X" (done by the same worker under the lease). The timer's
cycle puts many staff members' plain syncs in one message (`StaffSyncBatch`), which the worker
runs as one request each; everything else is a message per staff member."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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


# Staff members per batch message. Worst case (255-character ids, roster entries with 254-character
# e-mails) a batch stays far below Queue Storage's 64 KiB per message, base64 included.
STAFF_PER_MESSAGE: Final = 50


class BatchedStaff(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    staff_id: str = Field(min_length=1, max_length=255)
    # As `StaffSyncRequest.roster`: set only for a staff member with no record yet.
    roster: Roster | None = None


class StaffSyncBatch(BaseModel):
    """Plain syncs of several staff members for one reason, in one queue message. A fan-out
    of one message per staff member cost a 10,000-staff cycle 10,000 sends, and the workers as
    many receives and deletes; a quiet cycle is mostly that."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    staff: list[BatchedStaff] = Field(min_length=1)
    reason: SyncReason
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    traceparent: str | None = Field(default_factory=current_traceparent)

    @property
    def continues_trace(self) -> bool:
        return self.reason != "timer"

    def requests(self) -> list[StaffSyncRequest]:
        """One request per staff member, as if each had been sent on its own."""
        return [
            StaffSyncRequest(
                staff_id=entry.staff_id,
                reason=self.reason,
                requested_at=self.requested_at,
                traceparent=self.traceparent,
                roster=entry.roster,
            )
            for entry in self.staff
        ]


# What a `staff-sync` message holds.
QueuedWork = StaffSyncRequest | StaffSyncBatch
_QUEUED_WORK: Final = TypeAdapter[QueuedWork](QueuedWork)


def parse_work(body: bytes | str) -> QueuedWork:
    """A message's work (raises pydantic's ValidationError for anything else)."""
    return _QUEUED_WORK.validate_json(body)


def fan_out(
    staff_ids: Iterable[str],
    reason: SyncReason,
    rosters: Mapping[str, Roster] | None = None,
    *,
    per_message: int = 1,
) -> list[QueuedWork]:
    """The messages asking for a plain sync of each staff member (sorted, once each): a
    request each, or with `per_message` > 1 batches of at most that many."""
    ids = sorted(set(staff_ids))
    entries = rosters or {}
    if per_message <= 1:
        return [StaffSyncRequest(staff_id=s, reason=reason, roster=entries.get(s)) for s in ids]
    return [
        StaffSyncBatch(
            staff=[
                BatchedStaff(staff_id=s, roster=entries.get(s)) for s in ids[i : i + per_message]
            ],
            reason=reason,
        )
        for i in range(0, len(ids), per_message)
    ]


def unpacked(work: QueuedWork) -> list[StaffSyncRequest]:
    """The staff members' requests a message holds."""
    return work.requests() if isinstance(work, StaffSyncBatch) else [work]


def work_attributes(work: QueuedWork) -> dict[str, str | int | bool]:
    """The message's span attributes: ids and reasons, nothing personal."""
    if isinstance(work, StaffSyncBatch):
        return {"trigger": work.reason, "staff_count": len(work.staff)}
    return {
        "staff_id": work.staff_id,
        "trigger": work.reason,
        "action": work.action,
        "full": work.full,
        "attempt": work.attempt,
    }
