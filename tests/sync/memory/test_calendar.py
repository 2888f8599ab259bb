"""`MemoryCalendar`'s own controls, which the contract suite cannot reach through the port: what
people do in Outlook, lost answers, throttling, a crash right after a write, and the request
counter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sync.errors import DeltaExpired, EventGone
from sync.graph.errors import GraphRetryable
from sync.memory.calendar import DELTA_PAGE_SIZE, MemoryCalendar
from sync.memory.faults import Crash
from sync.ports import MailboxUser

WINDOW = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def event(subject: str, day: int = 1, zone: str = "UTC") -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"2026-12-{day:02d}T10:00:00", "timeZone": zone},
        "end": {"dateTime": f"2026-12-{day:02d}T11:00:00", "timeZone": zone},
        "showAs": "busy",
    }


@pytest.fixture
def calendar() -> MemoryCalendar:
    return MemoryCalendar()


@pytest.fixture
def kim(calendar: MemoryCalendar) -> MailboxUser:
    return calendar.add_user("kim@bank.example", "W. Europe Standard Time")


async def test_users_are_found_by_mail_whatever_its_case_and_only_when_unique(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    assert await calendar.find_user("KIM@Bank.Example") == kim
    assert kim.time_zone == "W. Europe Standard Time"
    assert await calendar.find_user("lee@bank.example") is None
    calendar.add_user("lee@bank.example")
    calendar.add_user("Lee@bank.example")
    assert await calendar.find_user("lee@bank.example") is None, "two users: neither is chosen"


async def test_what_people_do_in_outlook_changes_the_change_key_and_shows_in_the_delta(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    own = calendar.person_create(kim.id, event("Dentist"))
    first = await calendar.calendar_delta(kim.id, window=WINDOW)
    assert [item["id"] for item in first.items] == [own]
    assert first.delta_link is not None
    written = await calendar.create_event(
        kim.id, event("Opening an account", 2), transaction_id="tx-1", coconut_key="appointment:1"
    )

    before = await calendar.change_key_of(kim.id, written.id)
    calendar.person_edit(kim.id, written.id, {"subject": "Lunch"})
    calendar.person_delete(kim.id, own)

    assert await calendar.change_key_of(kim.id, written.id) not in (None, before)
    assert await calendar.change_key_of(kim.id, own) is None
    assert [e.body["subject"] for e in calendar.live_events(kim.id)] == ["Lunch"]
    changed = await calendar.calendar_delta(kim.id, link=first.delta_link)
    assert [(item["id"], "@removed" in item) for item in changed.items] == [
        (written.id, False),
        (own, True),
    ], "in the order they changed"
    assert [e.id for e in await calendar.find_service_events(kim.id)] == [written.id]


async def test_the_delta_reports_times_in_utc_without_extended_properties(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    await calendar.create_event(
        kim.id,
        event("Opening an account", zone="Pacific Standard Time"),
        transaction_id="tx-1",
        coconut_key="appointment:1",
    )

    [item] = (await calendar.calendar_delta(kim.id, window=WINDOW)).items

    assert item["start"] == {"dateTime": "2026-12-01T18:00:00", "timeZone": "UTC"}
    assert item["end"] == {"dateTime": "2026-12-01T19:00:00", "timeZone": "UTC"}
    assert (item["type"], item["subject"]) == ("singleInstance", "Opening an account")
    assert "singleValueExtendedProperties" not in item


async def test_a_round_pages_and_events_outside_the_window_are_left_out(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    for day in range(1, DELTA_PAGE_SIZE + 4):
        calendar.person_create(kim.id, event(f"Day {day}", day))
    outside = calendar.person_create(
        kim.id,
        {
            **event("Last year"),
            "start": {"dateTime": "2025-12-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2025-12-01T11:00:00", "timeZone": "UTC"},
        },
    )

    page = await calendar.calendar_delta(kim.id, window=WINDOW)
    seen = [item["id"] for item in page.items]
    while page.next_link is not None:
        assert page.delta_link is None
        page = await calendar.calendar_delta(kim.id, link=page.next_link)
        seen += [item["id"] for item in page.items]

    assert len(seen) == DELTA_PAGE_SIZE + 3
    assert outside not in seen
    assert page.delta_link is not None
    quiet = await calendar.calendar_delta(kim.id, link=page.delta_link)
    assert (quiet.items, quiet.next_link) == ([], None)


async def test_a_lost_answer_means_the_write_happened_and_the_caller_heard_a_503(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    calendar.lose_next_answers(2)

    with pytest.raises(GraphRetryable) as lost:
        await calendar.create_event(
            kim.id, event("Opening"), transaction_id="tx-1", coconut_key="appointment:1"
        )
    [made] = calendar.live_events(kim.id)
    with pytest.raises(GraphRetryable):
        await calendar.update_event(kim.id, made.id, {"subject": "Changed"})
    again = await calendar.create_event(
        kim.id, event("Opening"), transaction_id="tx-1", coconut_key="appointment:1"
    )

    assert (lost.value.status, lost.value.code) == (503, "LostAnswer")
    assert made.body["subject"] == "Changed", "the update went through too"
    assert again.id == made.id, "the retried create answers with the first event"
    assert len(calendar.live_events(kim.id)) == 1


async def test_a_transaction_id_stays_bound_to_its_event_after_that_was_deleted(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    first = await calendar.create_event(
        kim.id, event("Opening"), transaction_id="tx-1", coconut_key="appointment:1"
    )
    await calendar.delete_event(kim.id, first.id)
    await calendar.delete_event(kim.id, first.id)  # a gone event counts as deleted

    again = await calendar.create_event(
        kim.id, event("Opening"), transaction_id="tx-1", coconut_key="appointment:1"
    )

    assert again.id == first.id
    assert calendar.live_events(kim.id) == [], "no new event: the id answers with the dead one"
    with pytest.raises(EventGone):
        await calendar.update_event(kim.id, first.id, {"subject": "Changed"})


async def test_throttling_answers_429_with_its_wait_to_any_request(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    calendar.throttle_next(2, retry_after=7.5)

    for _ in range(2):
        with pytest.raises(GraphRetryable) as throttled:
            await calendar.find_user("kim@bank.example")
        assert (throttled.value.status, throttled.value.delay) == (429, 7.5)

    assert await calendar.find_user("kim@bank.example") == kim
    # Two throttled lookups, then the directory and the mailbox settings, as on Graph.
    assert calendar.requests == 4


async def test_a_planned_crash_comes_right_after_the_write_it_was_planned_for(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    calendar.faults.crash_after_writes = 2
    await calendar.create_event(
        kim.id, event("One"), transaction_id="tx-1", coconut_key="appointment:1"
    )

    with pytest.raises(Crash):
        await calendar.create_event(
            kim.id, event("Two", 2), transaction_id="tx-2", coconut_key="appointment:2"
        )

    assert [e.body["subject"] for e in calendar.live_events(kim.id)] == ["One", "Two"]
    with pytest.raises(Crash):
        await calendar.find_user("kim@bank.example")
    calendar.faults.restart()
    assert await calendar.find_user("kim@bank.example") == kim


async def test_a_new_round_needs_its_window_and_another_mailbox_link_has_expired(
    calendar: MemoryCalendar, kim: MailboxUser
) -> None:
    lee = calendar.add_user("lee@bank.example")
    page = await calendar.calendar_delta(kim.id, window=WINDOW)
    assert page.delta_link is not None

    with pytest.raises(ValueError, match="window"):
        await calendar.calendar_delta(kim.id)
    with pytest.raises(DeltaExpired):
        await calendar.calendar_delta(lee.id, link=page.delta_link)
    with pytest.raises(DeltaExpired):
        await calendar.calendar_delta(kim.id, link="https://graph.example/delta?token=x")
