"""The webhook receiver (`receive_webhook`) against the contract: every status it answers, read
back from where a delivery lands (the desired state in `MemoryItemTable`, the staff members'
pending rows in `MemoryItemLinks`, the sync requests in `MemoryQueue`) and from the log. A refused
delivery must leave no trace in any of them. `tests/integration/test_webhook_endpoint.py` runs a
few of these end to end through the local Functions host."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from local.coconut_emulator.webhooks import bad_deliveries as bad
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.delivery import PreparedDelivery
from local.coconut_emulator.webhooks.payloads import StaffRef
from local.stack import WEBHOOK_SECRET
from sync.desired_items import DesiredItemStore
from sync.desired_state import DesiredItem
from sync.errors import RecordTooLarge, StorageUnavailable
from sync.memory.faults import Faults
from sync.memory.storage import STORAGE, MemoryItemLinks, MemoryItemTable, MemoryQueue
from sync.webhooks.receiver import MAX_BODY_BYTES, WebhookReply, receive_webhook
from tests.sync.webhooks.deliveries import (
    PREVIOUS_SECRET,
    REFUSALS,
    SECRETS,
    START,
    VIOLATION_PATHS,
    VIOLATIONS,
    Builder,
    absence,
    booking,
    item_key,
    named_fields,
    new_coconut,
    new_staff_member,
    now,
    personal_data_in,
    signed,
    violation,
)

ROTATING = (WEBHOOK_SECRET, PREVIOUS_SECRET)


class TooLargeTable(MemoryItemTable):
    """An item table whose entity size limit every item exceeds."""

    async def swap(self, item: DesiredItem, etag: str | None) -> bool:
        raise RecordTooLarge(f"{item.key} does not fit one entity")


class Receiver:
    """The receiver as the function app wires it, over the memory stores; mid-rotation, so the
    previous webhook secret is still accepted."""

    def __init__(
        self,
        *,
        table: MemoryItemTable | None = None,
        links: MemoryItemLinks | None = None,
        queue: MemoryQueue | None = None,
    ) -> None:
        self.table = table or MemoryItemTable()
        self.links = links or MemoryItemLinks()
        self.queue = queue or MemoryQueue()
        self.items = DesiredItemStore(self.table, self.links)

    async def post(self, prepared: PreparedDelivery, at: float | None = None) -> WebhookReply:
        # The host passes every request header, Content-Length included.
        headers = {**prepared.headers, "Content-Length": str(len(prepared.body))}
        return await receive_webhook(
            headers,
            prepared.body,
            secrets=ROTATING,
            recorder=self.items,
            requester=self.queue,
            now=now() if at is None else at,
        )

    def revision(self, envelope: Mapping[str, Any]) -> int | None:
        stored = self.table.items.get(item_key(envelope))
        return None if stored is None else stored[0].revision

    def pending(self, staff: StaffRef) -> dict[str, bool]:
        """The staff member's rows: item key -> waiting for a run."""
        rows = self.links.partitions.get(staff["id"], {})
        return {key: row.pending for key, row in rows.items()}

    def requested(self) -> list[tuple[str, str, bool, float]]:
        return [
            (m.request.staff_id, m.request.reason, m.request.full, m.delay_seconds)
            for m in self.queue.messages
        ]

    def assert_nothing_recorded(self) -> None:
        assert self.table.items == {}, "the item was recorded"
        assert self.links.partitions == {}, "a sync was marked as needed"
        assert self.queue.messages == [], "a sync was asked for"


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def staff() -> StaffRef:
    return new_staff_member()


def assert_no_personal_data(reply: WebhookReply) -> None:
    leaked = personal_data_in(str(reply.body))
    assert not leaked, f"the answer echoes personal data: {leaked}"


# --- 202 ---------------------------------------------------------------------------------------


async def test_a_new_change_is_recorded_marked_and_queued_before_the_answer(
    receiver: Receiver, staff: StaffRef
) -> None:
    booked = booking(new_coconut(), staff)

    reply = await receiver.post(signed(booked))

    assert (reply.status, reply.body) == (202, {"status": "accepted"})
    assert receiver.revision(booked) == 1
    [(recorded, _)] = receiver.table.items.values()
    assert recorded.staff_ids == {staff["id"]}
    assert recorded.staff_emails == {staff["id"]: staff["email"]}
    assert receiver.pending(staff) == {item_key(booked): True}
    assert receiver.requested() == [(staff["id"], "webhook", False, 0.0)]


async def test_a_redelivery_is_a_duplicate_that_asks_for_the_sync_again(
    receiver: Receiver, staff: StaffRef
) -> None:
    booked = booking(new_coconut(), staff)
    await receiver.post(signed(booked))

    again = await receiver.post(signed(booked))  # same delivery id and body, signed anew

    assert (again.status, again.body) == (202, {"status": "duplicate"})
    assert receiver.revision(booked) == 1
    # Asked again: a first delivery whose enqueue failed after the record is repaired this way.
    assert [r[0] for r in receiver.requested()] == [staff["id"], staff["id"]]


async def test_an_older_revision_is_stale_and_the_newer_one_stays(
    receiver: Receiver, staff: StaffRef
) -> None:
    coconut = new_coconut()
    booked = booking(coconut, staff)
    renoted = dict(coconut.change_notes(booked["data"]["id"], "revision two"))
    assert (await receiver.post(signed(renoted))).body == {"status": "accepted"}

    stale = await receiver.post(signed(booked))

    assert (stale.status, stale.body) == (202, {"status": "stale"})
    assert receiver.revision(booked) == 2
    assert len(receiver.requested()) == 1, "a stale delivery asks for nothing"


class ReadCountingTable(MemoryItemTable):
    """An item table that counts the reads of item records."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(
        self, key: str, *, with_content: bool = True
    ) -> tuple[DesiredItem | None, str | None]:
        self.reads += 1
        return await super().read(key, with_content=with_content)


async def test_a_new_booking_is_recorded_without_reading_the_item_first(staff: StaffRef) -> None:
    # A burst of new bookings is the busiest intake there is: one storage round trip fewer each.
    table = ReadCountingTable()
    receiver = Receiver(table=table)
    booked = booking(new_coconut(), staff)

    reply = await receiver.post(signed(booked))

    assert reply.body == {"status": "accepted"}
    assert table.reads == 0
    assert receiver.revision(booked) == 1
    assert receiver.pending(staff) == {item_key(booked): True}
    assert receiver.requested() == [(staff["id"], "webhook", False, 0.0)]


async def test_a_creation_that_arrives_after_its_update_is_stale_and_its_row_keeps_the_update(
    staff: StaffRef,
) -> None:
    table = ReadCountingTable()
    receiver = Receiver(table=table)
    coconut = new_coconut()
    booked = booking(coconut, staff)
    start = datetime.fromisoformat(booked["data"]["attributes"]["start"])
    moved = dict(
        coconut.reschedule(
            booked["data"]["id"], start + timedelta(days=2), start + timedelta(days=2, hours=1)
        )
    )
    assert (await receiver.post(signed(moved))).body == {"status": "accepted"}
    [(recorded, _)] = table.items.values()

    late = await receiver.post(signed(booked))  # the creation, delivered out of order

    assert (late.status, late.body) == (202, {"status": "stale"})
    assert receiver.revision(booked) == 2
    assert table.reads == 2, "the update read the item, the creation read it once its insert failed"
    # The creation's first try marked the row with its own (older) end; the row says the
    # recorded one again, or a pass reading the working window could leave the item out.
    row = receiver.links.partitions[staff["id"]][item_key(booked)]
    assert row.ends == recorded.ends_at
    assert len(receiver.requested()) == 1, "a stale delivery asks for nothing"


async def test_a_reassignment_asks_for_both_calendars(receiver: Receiver, staff: StaffRef) -> None:
    coconut = new_coconut()
    booked = booking(coconut, staff)
    other = new_staff_member()
    await receiver.post(signed(booked))

    reply = await receiver.post(signed(dict(coconut.reassign(booked["data"]["id"], [other]))))

    assert reply.body == {"status": "accepted"}
    assert sorted(r[0] for r in receiver.requested()[1:]) == sorted([staff["id"], other["id"]])
    assert receiver.pending(other) == {item_key(booked): True}


async def test_a_deletion_asks_for_the_calendars_that_held_the_item(
    receiver: Receiver, staff: StaffRef
) -> None:
    coconut = new_coconut()
    booked = booking(coconut, staff)
    await receiver.post(signed(booked))

    reply = await receiver.post(signed(dict(coconut.delete(booked["data"]["id"]))))

    assert reply.body == {"status": "accepted"}
    [(tombstone, _)] = receiver.table.items.values()
    assert (tombstone.deleted, tombstone.revision, tombstone.resource) == (True, 2, None)
    assert [r[0] for r in receiver.requested()] == [staff["id"], staff["id"]]


async def test_an_absence_is_recorded_for_its_one_staff_member(
    receiver: Receiver, staff: StaffRef
) -> None:
    away = absence(new_coconut(), staff)

    reply = await receiver.post(signed(away))

    assert reply.body == {"status": "accepted"}
    assert receiver.pending(staff) == {item_key(away): True}
    assert item_key(away).startswith("unavailability:")


async def test_an_unknown_event_type_is_accepted_and_ignored(
    receiver: Receiver, staff: StaffRef
) -> None:
    booked = booking(new_coconut(), staff)
    future = {**booked, "id": payloads.new_delivery_id(), "type": "appointment.checked_in"}

    reply = await receiver.post(signed(future))

    assert (reply.status, reply.body) == (202, {"status": "ignored"})
    receiver.assert_nothing_recorded()


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", 'application/json; charset="utf-8"', "Application/JSON"],
)
async def test_json_with_or_without_the_utf8_charset_is_accepted(
    receiver: Receiver, staff: StaffRef, content_type: str
) -> None:
    booked = booking(new_coconut(), staff)

    reply = await receiver.post(signed(booked, content_type=content_type))

    assert (reply.status, reply.body) == (202, {"status": "accepted"})
    assert receiver.revision(booked) == 1


async def test_json_in_another_charset_is_415(receiver: Receiver, staff: StaffRef) -> None:
    booked = booking(new_coconut(), staff)

    reply = await receiver.post(signed(booked, content_type="application/json; charset=latin-1"))

    assert reply.status == 415
    receiver.assert_nothing_recorded()


@pytest.mark.parametrize("offset", [-300, -290, 290, 300], ids=lambda s: f"{s:+} s")
async def test_a_timestamp_within_the_tolerance_is_accepted(
    receiver: Receiver, staff: StaffRef, offset: int
) -> None:
    booked = booking(new_coconut(), staff)
    sent = now()

    reply = await receiver.post(bad.prepare(booked, SECRETS, sent + offset), at=sent)

    assert reply.status == 202
    assert receiver.revision(booked) == 1


@pytest.mark.parametrize("offset", [-301, 301], ids=lambda s: f"{s:+} s")
async def test_a_timestamp_just_outside_the_tolerance_is_401(
    receiver: Receiver, staff: StaffRef, offset: int
) -> None:
    booked = booking(new_coconut(), staff)
    sent = now()

    reply = await receiver.post(bad.prepare(booked, SECRETS, sent + offset), at=sent)

    assert reply.status == 401
    assert reply.body == {"error": "X-Coconut-Timestamp is outside the 300 s tolerance"}
    receiver.assert_nothing_recorded()


@pytest.mark.parametrize(
    "secrets",
    [[PREVIOUS_SECRET], [WEBHOOK_SECRET, PREVIOUS_SECRET], [bad.WRONG_SECRET, PREVIOUS_SECRET]],
    ids=["previous only", "current and previous", "unknown and previous"],
)
async def test_a_delivery_signed_with_the_previous_secret_is_accepted_during_rotation(
    receiver: Receiver, staff: StaffRef, secrets: list[str]
) -> None:
    booked = booking(new_coconut(), staff)

    reply = await receiver.post(bad.prepare(booked, secrets, now()))

    assert (reply.status, reply.body) == (202, {"status": "accepted"})
    assert receiver.revision(booked) == 1


async def test_a_body_of_exactly_one_mib_is_accepted(receiver: Receiver, staff: StaffRef) -> None:
    booked = booking(new_coconut(), staff)
    limit = bad.oversize_body(booked, SECRETS, now(), size=bad.MAX_BODY_BYTES)
    assert len(limit.body) == bad.MAX_BODY_BYTES == MAX_BODY_BYTES

    reply = await receiver.post(limit)

    assert reply.status == 202
    assert receiver.revision(booked) == 1


async def test_header_names_are_matched_whatever_their_case(
    receiver: Receiver, staff: StaffRef
) -> None:
    booked = booking(new_coconut(), staff)
    prepared = signed(booked)
    lower = {name.lower(): value for name, value in prepared.headers.items()}

    reply = await receiver.post(PreparedDelivery(prepared.body, lower, prepared.delivery_id))

    assert reply.status == 202
    assert receiver.revision(booked) == 1


async def test_a_delivery_without_the_delivery_header_is_accepted(
    receiver: Receiver, staff: StaffRef
) -> None:
    booked = booking(new_coconut(), staff)
    prepared = signed(booked)
    headers = {k: v for k, v in prepared.headers.items() if k != "X-Coconut-Delivery"}

    reply = await receiver.post(PreparedDelivery(prepared.body, headers, None))

    assert reply.status == 202
    assert receiver.revision(booked) == 1


# --- refused deliveries --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REFUSALS))
async def test_a_refused_delivery_gets_its_status_and_records_nothing(
    receiver: Receiver, staff: StaffRef, name: str
) -> None:
    booked = booking(new_coconut(), staff)
    sent = now()
    prepared = REFUSALS[name](booked, sent)

    reply = await receiver.post(prepared, at=sent)

    assert reply.status == prepared.expected_status
    assert reply.body["error"], "the answer names the problem"
    assert_no_personal_data(reply)
    receiver.assert_nothing_recorded()


@pytest.mark.parametrize(
    ("resource", "name"), [(b, n) for _, b, n in VIOLATIONS], ids=[i for i, _, _ in VIOLATIONS]
)
async def test_a_schema_violation_is_400_naming_the_field_without_personal_data(
    receiver: Receiver, staff: StaffRef, resource: Builder, name: str
) -> None:
    envelope = resource(new_coconut(), staff)
    body = violation(resource, name)(envelope)

    reply = await receiver.post(bad.prepare(body, SECRETS, now(), delivery_id=str(envelope["id"])))

    assert reply.status == 400
    error = reply.body["error"]
    assert VIOLATION_PATHS[name] in named_fields(error), f"{error!r} does not name the field"
    assert_no_personal_data(reply)
    receiver.assert_nothing_recorded()


async def test_a_delivery_header_that_differs_from_the_envelope_is_400(
    receiver: Receiver, staff: StaffRef
) -> None:
    booked = booking(new_coconut(), staff)

    reply = await receiver.post(signed(booked, delivery_id="whevt_someone_else"))

    assert reply.status == 400
    assert reply.body == {"error": "X-Coconut-Delivery: does not equal the envelope id"}
    receiver.assert_nothing_recorded()


async def test_a_declared_length_over_one_mib_is_413_before_anything_else(
    receiver: Receiver, staff: StaffRef
) -> None:
    booked = booking(new_coconut(), staff)
    prepared = signed(booked)
    headers = {**prepared.headers, "Content-Length": str(MAX_BODY_BYTES + 1)}

    reply = await receive_webhook(
        headers,
        prepared.body,
        secrets=ROTATING,
        recorder=receiver.items,
        requester=receiver.queue,
    )

    assert (reply.status, reply.body) == (413, {"error": "body larger than 1 MiB"})
    receiver.assert_nothing_recorded()


async def test_a_resource_too_large_for_one_entity_is_400_and_asks_for_no_sync(
    staff: StaffRef,
) -> None:
    receiver = Receiver(table=TooLargeTable())
    booked = booking(new_coconut(), staff)

    reply = await receiver.post(signed(booked))

    assert reply.status == 400
    assert reply.body == {"error": "data: the resource is too large to record"}
    assert receiver.table.items == {}
    assert receiver.queue.messages == []


# --- 503: the state store is down ----------------------------------------------------------------


async def test_the_item_table_down_is_503_with_nothing_recorded(staff: StaffRef) -> None:
    faults = Faults()
    receiver = Receiver(table=MemoryItemTable(faults))
    booked = booking(new_coconut(), staff)
    faults.fail_next(STORAGE, StorageUnavailable("storage answered 503"))

    reply = await receiver.post(signed(booked))

    assert (reply.status, reply.body) == (503, {"error": "state store unavailable; retry later"})
    assert receiver.table.items == {}
    assert receiver.queue.messages == []
    # The staff member's row was marked before the insert failed: a mark that waits for its
    # record (`awaits_its_record`), which the retry below commits.
    assert receiver.pending(staff) == {item_key(booked): True}
    # Coconut retries the same delivery once storage is back: accepted as new.
    assert (await receiver.post(signed(booked))).body == {"status": "accepted"}
    assert receiver.requested() == [(staff["id"], "webhook", False, 0.0)]


async def test_the_links_down_is_503_before_the_item_is_committed(staff: StaffRef) -> None:
    faults = Faults()
    receiver = Receiver(links=MemoryItemLinks(faults))
    booked = booking(new_coconut(), staff)
    faults.fail_next(STORAGE, StorageUnavailable("storage answered 503"))

    reply = await receiver.post(signed(booked))

    assert reply.status == 503
    receiver.assert_nothing_recorded()
    assert (await receiver.post(signed(booked))).body == {"status": "accepted"}
    assert receiver.pending(staff) == {item_key(booked): True}


async def test_the_queue_down_after_the_commit_is_503_and_the_redelivery_asks_again(
    staff: StaffRef,
) -> None:
    faults = Faults()
    receiver = Receiver(queue=MemoryQueue(faults))
    booked = booking(new_coconut(), staff)
    faults.fail_next(STORAGE, StorageUnavailable("storage answered 503"))

    reply = await receiver.post(signed(booked))

    assert reply.status == 503
    assert receiver.revision(booked) == 1, "the desired state is committed"
    assert receiver.pending(staff) == {item_key(booked): True}, "and the run it needs marked"
    assert receiver.queue.messages == []
    again = await receiver.post(signed(booked))
    assert (again.status, again.body) == (202, {"status": "duplicate"})
    assert receiver.requested() == [(staff["id"], "webhook", False, 0.0)]


# --- the log -------------------------------------------------------------------------------------


async def test_the_log_names_the_delivery_by_ids_only(
    receiver: Receiver, staff: StaffRef, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sync.webhooks")
    booked = booking(new_coconut(), staff, start=START)

    await receiver.post(signed(booked))

    [record] = [r for r in caplog.records if r.name == "sync.webhooks"]
    assert record.getMessage() == "webhook accepted"
    fields = vars(record)
    assert fields["operation"] == "webhook"
    assert fields["outcome"] == "accepted"
    assert fields["staff_count"] == 1
    assert fields["delivery_id"] == booked["id"]
    assert fields["event_type"] == "appointment.created"
    assert fields["coconut_id"] == item_key(booked)
    assert fields["revision"] == "1"
    leaked = personal_data_in(str(fields))
    assert not leaked, leaked


async def test_an_outage_is_logged_as_a_warning_without_personal_data(
    staff: StaffRef, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "sync.webhooks")
    faults = Faults()
    receiver = Receiver(table=MemoryItemTable(faults))
    faults.fail_next(STORAGE, StorageUnavailable("storage answered 503"))
    booked = booking(new_coconut(), staff)

    await receiver.post(signed(booked))

    [record] = [r for r in caplog.records if r.name == "sync.webhooks"]
    assert record.levelno == logging.WARNING
    assert vars(record)["outcome"] == "unavailable"
    assert vars(record)["delivery_id"] == booked["id"]
    assert not personal_data_in(str(vars(record)))


@pytest.mark.parametrize("name", ["401 wrong secret", "400 cut short", "415 text/plain"])
async def test_a_refusal_is_not_logged_with_the_body(
    receiver: Receiver, staff: StaffRef, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.DEBUG)
    booked = booking(new_coconut(), staff)
    sent = now()

    await receiver.post(REFUSALS[name](booked, sent), at=sent)

    assert not personal_data_in(caplog.text)
    assert not any(personal_data_in(str(vars(r))) for r in caplog.records)
