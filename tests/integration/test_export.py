"""Export on the local stack: Coconut webhooks in, events in the staff members' Graph calendars.

Every outcome is read back from the Graph emulator's mailboxes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.stack import LocalStack
from sync.timezones import mailbox_zone
from tests.integration.conftest import (
    deliver,
    events_by_key,
    eventually,
    landed,
    synced_events,
)

pytestmark = pytest.mark.integration

TORONTO = ZoneInfo("America/Toronto")


def instant(value: dict[str, str]) -> datetime:
    """The moment a Graph dateTimeTimeZone stands for."""
    wall = datetime.fromisoformat(value["dateTime"].split(".")[0])
    return wall.replace(tzinfo=mailbox_zone(value["timeZone"]))


class People:
    """Staff members with a mailbox each, unique per test so tests cannot see each other."""

    def __init__(self, stack: LocalStack) -> None:
        tag = uuid.uuid4().hex[:8]
        self.jane = payloads.staff_member(
            f"U-jane-{tag}", f"jane.{tag}@bank.example", "Jane", "Doe"
        )
        self.omar = payloads.staff_member(
            f"U-omar-{tag}", f"omar.{tag}@bank.example", "Omar", "Ali"
        )
        self.jane_box = stack.graph.add_user(
            f"jdoe.{tag}@bank.onmicrosoft.com",
            mail=f"Jane.{tag}@bank.example",  # matched case-insensitively
            time_zone="Eastern Standard Time",
        ).id
        self.omar_box = stack.graph.add_user(
            f"oali.{tag}@bank.onmicrosoft.com",
            mail=f"omar.{tag}@bank.example",
            time_zone="Pacific Standard Time",
        ).id


@pytest.fixture
def people(stack: LocalStack) -> People:
    return People(stack)


def new_coconut() -> Coconut:
    """A Coconut whose appointment ids no other test uses (the stack is shared per module)."""
    return Coconut(first_appointment_number=uuid.uuid4().int % 10**9)


def book_hour(coconut: Coconut, staff: list[payloads.StaffRef]) -> payloads.Envelope:
    """A one-hour booking at the branch, the case most tests start from."""
    return coconut.book(
        staff=staff, start=START, end=START + timedelta(hours=1), service=OPENING, location=BRANCH
    )


def key(envelope: Mapping[str, Any]) -> str:
    data = envelope["data"]
    kind = "appointment" if data["type"] == "appointments" else "unavailability"
    return f"{kind}:{data['id']}"


BRANCH = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")
OPENING = payloads.service("S-7", "Opening an account")
START = datetime(2026, 12, 1, 14, 0, tzinfo=TORONTO)


async def test_booked_appointment_appears_in_the_staff_calendar_as_designed(
    stack: LocalStack, people: People
) -> None:
    coconut = new_coconut()
    sam = payloads.attendee(
        "C-9",
        "Sam",
        "Lee",
        email="sam.lee@example.com",
        cell_phone="+1 416 555 0100",
        phone="+1 416 555 0199",
        notes="Bring two pieces of ID.",
        answers=[payloads.answer("Which account type?", "Chequing")],
    )
    booked = coconut.book(
        staff=[people.jane],
        start=START,
        end=START + timedelta(minutes=30),
        service=OPENING,
        location=BRANCH,
        attendees=[sam],
        notes="Customer prefers French.",
    )
    assert await deliver(stack, booked) == [202]

    [event] = await eventually(lambda: synced_events(stack.graph, people.jane_box))
    assert event["subject"] == "Opening an account"
    assert event["location"]["displayName"] == "100 King St W, Toronto, ON M5X 1A9"
    assert event["showAs"] == "busy"
    assert not event.get("attendees"), "customers are never Graph attendees"
    assert event["originalStartTimeZone"] == "Eastern Standard Time", "written in the mailbox zone"
    assert instant(event["start"]) == START
    assert instant(event["end"]) == START + timedelta(minutes=30)
    body = event["body"]["content"]
    for expected in ("Customer prefers French.", "Sam", "Lee", "sam.lee@example.com"):
        assert expected in body
    assert "+1 416 555 0100" in body
    assert "+1 416 555 0199" not in body, "only the mobile number is listed"
    assert "Bring two pieces of ID." in body
    assert "Which account type?" in body
    assert "Chequing" in body
    assert body.index("Customer prefers French.") < body.index("Sam")


async def test_changes_patch_the_same_event(stack: LocalStack, people: People) -> None:
    coconut = new_coconut()
    booked = book_hour(coconut, [people.jane])
    await deliver(stack, booked)
    [first] = await eventually(lambda: synced_events(stack.graph, people.jane_box))
    appointment_id = booked["data"]["id"]

    later = START + timedelta(days=1, hours=2)
    await deliver(
        stack,
        coconut.reschedule(appointment_id, later, later + timedelta(minutes=45)),
        coconut.add_attendee(appointment_id, payloads.attendee("C-1", "Ana", "Ruiz")),
        coconut.change_location(appointment_id, None, meeting_method=payloads.VIDEO_CALL),
        coconut.change_service(appointment_id, payloads.service("S-8", "Mortgage review")),
    )

    def updated() -> dict[str, Any] | None:
        events = synced_events(stack.graph, people.jane_box)
        if len(events) == 1 and events[0]["subject"] == "Mortgage review":
            return events[0]
        return None

    event = await eventually(updated)
    assert event["id"] == first["id"], "the same Exchange event is updated"
    assert instant(event["start"]) == later
    assert instant(event["end"]) == later + timedelta(minutes=45)
    assert "Ana" in event["body"]["content"]
    assert event["location"].get("displayName", "") == "", "virtual: no location"


async def test_reassignment_moves_the_event_between_calendars(
    stack: LocalStack, people: People
) -> None:
    coconut = new_coconut()
    booked = book_hour(coconut, [people.jane])
    await deliver(stack, booked)
    await eventually(lambda: synced_events(stack.graph, people.jane_box))

    await deliver(stack, coconut.reassign(booked["data"]["id"], [people.omar]))

    [moved] = await eventually(lambda: synced_events(stack.graph, people.omar_box))
    await eventually(lambda: not synced_events(stack.graph, people.jane_box))
    assert moved["originalStartTimeZone"] == "Pacific Standard Time"
    assert instant(moved["start"]) == START


async def test_multi_staff_appointment_is_in_every_calendar_and_cancel_removes_them(
    stack: LocalStack, people: People
) -> None:
    coconut = new_coconut()
    booked = book_hour(coconut, [people.jane, people.omar])
    await deliver(stack, booked)
    await eventually(lambda: synced_events(stack.graph, people.jane_box))
    await eventually(lambda: synced_events(stack.graph, people.omar_box))

    await deliver(stack, coconut.cancel(booked["data"]["id"]))
    await eventually(lambda: not synced_events(stack.graph, people.jane_box))
    await eventually(lambda: not synced_events(stack.graph, people.omar_box))


async def test_duplicated_and_reordered_deliveries_converge_on_the_latest_revision(
    stack: LocalStack, people: People
) -> None:
    coconut = new_coconut()
    booked = book_hour(coconut, [people.jane])
    appointment_id = booked["data"]["id"]
    second = coconut.change_notes(appointment_id, "second")
    third = coconut.change_notes(appointment_id, "third")
    # Newest first, each twice: the older ones are stale or duplicates.
    statuses = await deliver(stack, third, third, second, booked, second)
    assert statuses == [202] * 5

    def settled() -> bool:
        found = events_by_key(stack.graph, people.jane_box)
        events = found.get(key(booked), [])
        return len(events) == 1 and "third" in events[0]["body"]["content"]

    await eventually(settled)


async def test_deleted_appointment_is_removed_and_stays_deleted(
    stack: LocalStack, people: People
) -> None:
    coconut = new_coconut()
    booked = book_hour(coconut, [people.jane])
    appointment_id = booked["data"]["id"]
    changed_before_deletion = coconut.change_notes(appointment_id, "late")
    await deliver(stack, booked)
    await eventually(lambda: synced_events(stack.graph, people.jane_box))
    deleted = coconut.delete(appointment_id)
    await deliver(stack, deleted)
    await eventually(lambda: not synced_events(stack.graph, people.jane_box))

    # Late deliveries (the original booking, a change made before the deletion, the deletion
    # again) bring nothing back. After each, a new booking for Jane lands in her calendar: a sync
    # of her calendar ran after the late delivery was recorded, and it still left the deleted
    # appointment out.
    for late in (booked, changed_before_deletion, deleted):
        assert await deliver(stack, late) == [202]
        marker = book_hour(coconut, [people.jane])
        await deliver(stack, marker)
        found = await landed(stack.graph, people.jane_box, key(marker))
        assert key(booked) not in found


async def test_three_week_absence_syncs_as_it_is(stack: LocalStack, people: People) -> None:
    coconut = new_coconut()
    start = datetime(2026, 12, 20, tzinfo=TORONTO)
    end = datetime(2027, 1, 10, tzinfo=TORONTO)
    absence = coconut.record_absence(
        staff=people.jane,
        start=start,
        end=end,
        title="Vacation",
        all_day=True,
        absence_id=f"N-{uuid.uuid4().hex[:8]}",
    )
    await deliver(stack, absence)
    [event] = await eventually(lambda: synced_events(stack.graph, people.jane_box))
    assert event["subject"] == "Vacation"
    assert event["showAs"] == "busy"
    assert instant(event["start"]) == start
    assert instant(event["end"]) == end

    await deliver(stack, coconut.change_absence(absence["data"]["id"], title="Parental leave"))
    await eventually(
        lambda: [
            e
            for e in synced_events(stack.graph, people.jane_box)
            if e["subject"] == "Parental leave" and e["id"] == event["id"]
        ]
    )
