"""Reading poison messages: a request is described by its ids, anything else as unreadable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sync.ops.poison import describe, parse_message
from sync.work import STAFF_PER_MESSAGE, StaffSyncRequest, fan_out


@dataclass
class Message:
    id: str
    content: bytes
    inserted_on: datetime | None = None
    dequeue_count: int | None = 8


def test_a_request_is_described_by_ids_and_flags() -> None:
    request = StaffSyncRequest(staff_id="U-1", reason="webhook", full=True, action="disconnect")
    described = describe(Message("m1", request.model_dump_json().encode()))
    assert (described.staff_id, described.reason, described.action, described.full) == (
        "U-1",
        "webhook",
        "disconnect",
        True,
    )
    assert described.dequeue_count == 8


def test_a_batch_is_described_by_the_staff_it_names() -> None:
    [batch] = fan_out(["U-1", "U-2"], "timer", per_message=STAFF_PER_MESSAGE)
    described = describe(Message("m3", batch.model_dump_json().encode()))
    assert described.staff_id is None, "not one staff member's"
    assert described.staff_ids == ["U-1", "U-2"]
    [one] = fan_out(["U-3"], "timer", per_message=STAFF_PER_MESSAGE)
    assert describe(Message("m4", one.model_dump_json().encode())).staff_id is None, "a batch"
    assert (described.reason, described.action, described.full) == ("timer", "sync", False)


def test_anything_else_is_unreadable_and_never_shown() -> None:
    for content in (b"not json", b'{"staff_id": ""}', b"\xff\xfe", b'{"reason": "webhook"}'):
        described = describe(Message("m2", content, datetime(2026, 1, 1, tzinfo=UTC)))
        assert described.staff_id is None
        assert described.staff_ids == []
        assert described.reason is None
    assert parse_message(None) is None


def test_messages_written_before_actions_existed_still_parse() -> None:
    old = b'{"staff_id": "U-1", "reason": "timer", "requested_at": "2026-01-01T00:00:00Z"}'
    request = parse_message(old)
    assert isinstance(request, StaffSyncRequest)
    assert (request.action, request.attempt, request.full) == ("sync", 0, False)
