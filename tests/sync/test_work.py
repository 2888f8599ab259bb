"""Queued work: a request put back keeps its origin, so latency covers every wait."""

from __future__ import annotations

from sync.staff_record import Roster
from sync.work import StaffSyncRequest


def test_a_retried_request_keeps_reason_time_and_action_and_counts_the_attempt() -> None:
    request = StaffSyncRequest(staff_id="U-1", reason="webhook", action="disconnect", full=True)
    again = request.retried().retried()
    assert again.attempt == 2
    assert (again.reason, again.requested_at, again.action, again.full) == (
        "webhook",
        request.requested_at,
        "disconnect",
        True,
    )


def test_a_request_holds_identifiers_and_flags_only() -> None:
    # What may travel through the queues (and so sit in the poison queue): nothing about a
    # customer. The one personal value is a staff member's own work e-mail, on the timer's
    # request for a staff member with no record yet: the staff table holds it too.
    assert set(StaffSyncRequest.model_fields) == {
        "staff_id",
        "reason",
        "requested_at",
        "full",
        "action",
        "attempt",
        "traceparent",  # random trace and span ids (sync.tracing)
        "roster",  # Coconut's roster entry: the staff member's e-mail, calendar sync on/off
    }
    assert set(Roster.model_fields) == {"email", "calendar_sync"}


def test_a_message_from_before_trace_context_still_parses() -> None:
    old = b'{"staff_id": "U-1", "reason": "webhook", "requested_at": "2026-12-01T14:00:00Z"}'
    request = StaffSyncRequest.model_validate_json(old)
    assert (request.staff_id, request.reason, request.traceparent) == ("U-1", "webhook", None)


def test_only_the_timers_fan_out_starts_its_own_traces() -> None:
    assert not StaffSyncRequest(staff_id="U-1", reason="timer").continues_trace
    for reason in ("webhook", "notification", "ops", "resync", "throttled", "lease_busy"):
        assert StaffSyncRequest(staff_id="U-1", reason=reason).continues_trace
