"""The status an administrator sees, from what the worker and the ops commands record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync.ops.status import STATUSES, count_by_status, effective_status, summarize
from sync.storage.staff_records import StaffRecord

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(**fields: Any) -> StaffRecord:
    return StaffRecord("U-1", fields, "etag")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "Pending"),
        ({"Email": "a@b.example"}, "Pending"),
        ({"Status": "Syncing"}, "Syncing"),
        ({"Status": "Warning"}, "Warning"),
        ({"Status": "Error"}, "Error"),
        ({"Status": "Pending"}, "Pending"),
        ({"Status": "Syncing", "CalendarSync": False}, "Disabled"),
        ({"Status": "Syncing", "Disconnected": True}, "Disconnecting"),
        ({"Status": "Disconnected", "Disconnected": True}, "Disconnected"),
        # Reconnected: the flag wins over a stale recorded status.
        ({"Status": "Disconnected", "Disconnected": False}, "Pending"),
        ({"Status": "Something new"}, "Pending"),
    ],
)
def test_effective_status(fields: dict[str, Any], expected: str) -> None:
    assert effective_status(fields) == expected


def test_a_lease_shows_only_while_it_is_held() -> None:
    held = record(LeaseOwner="worker-1", LeaseUntil=NOW + timedelta(minutes=1))
    released = record(LeaseOwner="", LeaseUntil=NOW + timedelta(minutes=1))
    expired = record(LeaseOwner="worker-1", LeaseUntil=NOW - timedelta(seconds=1))
    assert summarize(held, 0, NOW).leased_until == NOW + timedelta(minutes=1)
    assert summarize(released, 0, NOW).leased_until is None
    assert summarize(expired, 0, NOW).leased_until is None


def test_summary_carries_reason_times_work_and_events() -> None:
    row = summarize(
        record(Status="Error", Reason="Graph denied access", StatusAt=NOW, EventCount=7),
        3,
        NOW,
    )
    assert (row.status, row.reason, row.status_at, row.pending, row.events) == (
        "Error",
        "Graph denied access",
        NOW,
        3,
        7,
    )
    assert row.last_sync_at is None


def test_counts_name_every_status_even_at_zero() -> None:
    rows = [summarize(record(Status=s), 0, NOW) for s in ("Syncing", "Syncing", "Error")]
    counts = count_by_status(rows)
    assert list(counts) == list(STATUSES)
    assert counts["Syncing"] == 2
    assert counts["Error"] == 1
    assert counts["Warning"] == 0, "a zero lets the staff-in-Error alert resolve"
