"""Queued work: a request put back keeps its origin, so latency covers every wait; a batch
fits in a message and is read back as the requests it holds."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from sync.staff_record import Roster
from sync.work import STAFF_PER_MESSAGE, StaffSyncRequest, fan_out, parse_work, unpacked


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


def test_a_full_batch_of_the_longest_ids_and_e_mails_fits_in_one_queue_message() -> None:
    """Queue Storage takes at most 64 KiB per message, base64 (the host's encoding) included."""
    longest = [f"{n:03d}" + "x" * 252 for n in range(STAFF_PER_MESSAGE)]
    rosters = {s: Roster(email="e" * 240 + "@bank.example", calendar_sync=True) for s in longest}

    [batch] = fan_out(longest, "timer", rosters, per_message=STAFF_PER_MESSAGE)

    encoded = base64.b64encode(batch.model_dump_json().encode())
    assert len(encoded) <= 64 * 1024
    assert parse_work(batch.model_dump_json()) == batch


def test_a_message_is_read_as_the_work_it_holds() -> None:
    single = StaffSyncRequest(staff_id="U-1", reason="webhook")
    [batch] = fan_out(["U-2", "U-3"], "timer", per_message=STAFF_PER_MESSAGE)

    assert parse_work(single.model_dump_json()) == single
    assert [r.staff_id for r in unpacked(parse_work(batch.model_dump_json()))] == ["U-2", "U-3"]
    for unreadable in (b"{}", b'{"staff": [], "reason": "timer"}', b'{"staff_id": "U-1"}'):
        with pytest.raises(ValidationError):
            parse_work(unreadable)


def test_one_staff_member_per_message_is_a_plain_request_each() -> None:
    work = fan_out(["U-2", "U-1", "U-2"], "reconcile")

    assert work == [
        StaffSyncRequest(
            staff_id=s, reason="reconcile", requested_at=w.requested_at, traceparent=None
        )
        for s, w in zip(["U-1", "U-2"], work, strict=True)
    ]
