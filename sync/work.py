"""The one kind of queued work: "bring staff member X in step" (both directions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Why the sync was asked for; for telemetry and the ops view (never personal data).
SyncReason = Literal[
    "webhook", "timer", "notification", "resync", "retry", "throttled", "lease_busy", "ops"
]


class StaffSyncRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    staff_id: str = Field(min_length=1, max_length=255)
    reason: SyncReason
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # A full pass: every item re-checked and a fresh import window (ops "resync").
    full: bool = False
