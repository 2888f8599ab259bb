"""`MailboxCalendar`: a staff member's Exchange mailbox, as Graph documents it
(shared/graph/FACTS.md).

The export relies on `transactionId` to make a retried create harmless, on change keys to see a
person's edits, on `EventGone` to recreate what a person deleted; the import relies on delta
rounds (times in UTC, `@removed` for what left the view, 410 when Graph forgot the round) and
on 429's `Retry-After` to put work back for exactly as long as Graph asks.

A deleted event moves to Deleted Items, where Graph may keep resolving its id: for the service
it is gone all the same (no change key, an update answers `EventGone`, no longer found by its
Coconut id, `@removed` in delta).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest

from sync.errors import DeltaExpired, EventGone
from sync.export.rendering import EventDraft, GraphDateTime
from sync.graph.errors import GraphRefused, GraphRetryable, MailboxUnreachable
from sync.ports import MailboxCalendar, MailboxUser, WrittenEvent
from tests.contract.adapters import (
    MailboxesSide,
    memory_adapter_diverges,
    real_adapter_diverges,
    unique,
)

# The memory calendar answers every scheduled fault to its caller, where GraphCalendar (through
# GraphCaller) waits out a short one: kept so, since the worker's tests drive their recovery
# paths with single faults.
ANSWERS_EVERY_FAULT: Final = (
    "sync/memory/calendar.py MemoryCalendar raises each scheduled 429/503 to the caller; "
    "GraphCaller retries one with Retry-After <= 5 s inline (up to 4 attempts)"
)

# December 2030: Eastern Standard Time is UTC-5 all month.
ZONE: Final = "Eastern Standard Time"
WINDOW: Final = (datetime(2030, 12, 1, tzinfo=UTC), datetime(2030, 12, 8, tzinfo=UTC))
OUTSIDE: Final = 20  # a day of December past the window


def event_body(subject: str, day: int, hour: int = 9, hours: int = 1) -> dict[str, Any]:
    """What the service sends: an `EventDraft` at `hour` o'clock Eastern on `day` December."""

    def wall_clock(moment: int) -> GraphDateTime:
        return GraphDateTime(date_time=f"2030-12-{day:02d}T{moment:02d}:00:00", time_zone=ZONE)

    return EventDraft(
        subject=subject,
        body="Opening an account with Sam.",
        start=wall_clock(hour),
        end=wall_clock(hour + hours),
        location="100 King St W",
    ).to_graph()


def utc(day: int, hour: int) -> datetime:
    """`hour` o'clock Eastern on `day` December, in UTC."""
    return datetime(2030, 12, day, hour, tzinfo=UTC) + timedelta(hours=5)


def instant(value: dict[str, Any]) -> datetime:
    """A `dateTimeTimeZone` Graph returns in UTC."""
    assert value["timeZone"] == "UTC", value
    return datetime.fromisoformat(value["dateTime"]).replace(tzinfo=UTC)


async def whole_round(
    calendar: MailboxCalendar,
    user_id: str,
    *,
    link: str | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> tuple[dict[str, dict[str, Any]], str]:
    """Every page of one delta round: id -> item, and the delta link to keep."""
    items: dict[str, dict[str, Any]] = {}
    page = await calendar.calendar_delta(user_id, link=link, window=window)
    while True:
        for item in page.items:
            assert item["id"] not in items, "one round lists an event once"
            items[item["id"]] = item
        if page.next_link is None:
            break
        page = await calendar.calendar_delta(user_id, link=page.next_link)
    assert page.delta_link is not None
    return items, page.delta_link


def removed(item: dict[str, Any]) -> bool:
    return "@removed" in item


async def create(
    mailboxes: MailboxesSide, user_id: str, body: dict[str, Any], key: str | None = None
) -> WrittenEvent:
    return await mailboxes.calendar.create_event(
        user_id, body, transaction_id=unique("tx"), coconut_key=key or unique("appointment:A")
    )


def mailbox(mailboxes: MailboxesSide) -> str:
    return mailboxes.add_user(f"{unique('kim')}@bank.example")


# ----- users ---------------------------------------------------------------------------------


async def test_a_user_is_found_by_mail_whatever_its_case(mailboxes: MailboxesSide) -> None:
    """Coconut's e-mail and Microsoft 365's `mail` are typed by different people."""
    name = unique("Kim.Tremblay")
    user_id = mailboxes.add_user(f"{name}@Bank.Example", "W. Europe Standard Time")

    found = await mailboxes.calendar.find_user(f"{name.lower()}@bank.EXAMPLE")

    assert found == MailboxUser(user_id, "W. Europe Standard Time")


async def test_an_unknown_mail_finds_no_user(mailboxes: MailboxesSide) -> None:
    mailboxes.add_user(f"{unique('kim')}@bank.example")

    assert await mailboxes.calendar.find_user(f"{unique('nobody')}@bank.example") is None


# ----- writes --------------------------------------------------------------------------------


async def test_a_create_repeated_with_one_transaction_id_makes_one_event(
    mailboxes: MailboxesSide,
) -> None:
    """A retried POST (its answer lost) must not double the appointment."""
    user_id, key, transaction_id = mailbox(mailboxes), unique("appointment:A"), unique("tx")
    body = event_body("Opening an account", 2)

    first = await mailboxes.calendar.create_event(
        user_id, body, transaction_id=transaction_id, coconut_key=key
    )
    again = await mailboxes.calendar.create_event(
        user_id, body, transaction_id=transaction_id, coconut_key=key
    )

    assert again.id == first.id
    assert first.change_key
    assert mailboxes.event_count(user_id) == 1
    assert await mailboxes.calendar.find_events_for(user_id, key) == [again]


async def test_a_transaction_id_reused_for_another_event_is_refused(
    mailboxes: MailboxesSide,
) -> None:
    """Real tenants refuse a repeat whose body is another event (400
    `ErrorDuplicateTransactionId`); the writer then looks for the event or moves on a
    generation, so the answer must say exactly that."""
    user_id, key, transaction_id = mailbox(mailboxes), unique("appointment:A"), unique("tx")
    first = await mailboxes.calendar.create_event(
        user_id, event_body("Opening an account", 2), transaction_id=transaction_id, coconut_key=key
    )

    with pytest.raises(GraphRefused) as refused:
        await mailboxes.calendar.create_event(
            user_id,
            event_body("Opening an account", 3),
            transaction_id=transaction_id,
            coconut_key=key,
        )

    assert (refused.value.status, refused.value.code) == (400, "ErrorDuplicateTransactionId")
    assert mailboxes.event_count(user_id) == 1
    assert await mailboxes.calendar.find_events_for(user_id, key) == [first]


async def test_a_transaction_id_stays_bound_to_its_deleted_event(
    mailboxes: MailboxesSide,
) -> None:
    """Graph is silent on a repeat after the original was deleted; the strict reading (nothing
    created, the dead original answered) is the one a client must survive: a recreate needs a
    new transaction id."""
    user_id, key, transaction_id = mailbox(mailboxes), unique("appointment:A"), unique("tx")
    body = event_body("Opening an account", 2)
    first = await mailboxes.calendar.create_event(
        user_id, body, transaction_id=transaction_id, coconut_key=key
    )
    await mailboxes.calendar.delete_event(user_id, first.id)

    again = await mailboxes.calendar.create_event(
        user_id, body, transaction_id=transaction_id, coconut_key=key
    )

    assert again.id == first.id
    assert mailboxes.event_count(user_id) == 0
    assert await mailboxes.calendar.change_key_of(user_id, again.id) is None


async def test_creates_with_new_transaction_ids_make_new_events(mailboxes: MailboxesSide) -> None:
    user_id, key = mailbox(mailboxes), unique("appointment:A")

    first = await create(mailboxes, user_id, event_body("Opening an account", 2), key)
    second = await create(mailboxes, user_id, event_body("Opening an account", 2), key)

    assert first.id != second.id
    assert mailboxes.event_count(user_id) == 2
    found = await mailboxes.calendar.find_events_for(user_id, key)
    assert sorted(e.id for e in found) == sorted([first.id, second.id])


async def test_creates_for_two_mailboxes_in_turn_land_each_in_its_own(
    mailboxes: MailboxesSide,
) -> None:
    kim, lee = mailbox(mailboxes), mailbox(mailboxes)

    for user_id in (kim, lee, kim, lee, lee):
        await create(mailboxes, user_id, event_body("Opening an account", 2))

    assert (mailboxes.event_count(kim), mailboxes.event_count(lee)) == (2, 3)


async def test_an_update_makes_a_new_change_key(mailboxes: MailboxesSide) -> None:
    user_id = mailbox(mailboxes)
    created = await create(mailboxes, user_id, event_body("Opening an account", 2))

    updated = await mailboxes.calendar.update_event(
        user_id, created.id, event_body("Mortgage renewal", 3, hour=14)
    )

    assert updated.id == created.id
    assert updated.change_key not in (None, created.change_key)
    assert await mailboxes.calendar.change_key_of(user_id, created.id) == updated.change_key
    items, _ = await whole_round(mailboxes.calendar, user_id, window=WINDOW)
    event = items[created.id]
    assert (event["subject"], event["changeKey"]) == ("Mortgage renewal", updated.change_key)
    assert (instant(event["start"]), instant(event["end"])) == (utc(3, 14), utc(3, 15))


@pytest.mark.parametrize("how", ["deleted by the service", "deleted by a person", "moved away"])
async def test_an_event_gone_from_the_calendar_is_gone_for_the_service(
    mailboxes: MailboxesSide, how: str
) -> None:
    """Deleted (by the service or a person: to Deleted Items, where its id still resolves) or
    moved by a person to another calendar: no change key, an update answers `EventGone`, no
    longer found by its Coconut id, and a delete is done."""
    user_id, key = mailbox(mailboxes), unique("appointment:A")
    created = await create(mailboxes, user_id, event_body("Opening an account", 2), key)

    if how == "deleted by the service":
        await mailboxes.calendar.delete_event(user_id, created.id)
    elif how == "deleted by a person":
        mailboxes.person_deletes(user_id, created.id)
    else:
        mailboxes.person_moves_away(user_id, created.id)

    assert await mailboxes.calendar.change_key_of(user_id, created.id) is None
    with pytest.raises(EventGone):
        await mailboxes.calendar.update_event(user_id, created.id, event_body("Moved", 3))
    assert await mailboxes.calendar.find_events_for(user_id, key) == []
    assert await mailboxes.calendar.find_service_events(user_id) == []
    assert mailboxes.event_count(user_id) == 0
    await mailboxes.calendar.delete_event(user_id, created.id)


async def test_a_delete_of_a_deleted_event_is_done(mailboxes: MailboxesSide) -> None:
    user_id = mailbox(mailboxes)
    created = await create(mailboxes, user_id, event_body("Opening an account", 2))
    await mailboxes.calendar.delete_event(user_id, created.id)

    await mailboxes.calendar.delete_event(user_id, created.id)

    assert await mailboxes.calendar.change_key_of(user_id, created.id) is None


async def test_an_id_never_seen_has_no_change_key(mailboxes: MailboxesSide) -> None:
    user_id = mailbox(mailboxes)
    other = await create(mailboxes, mailbox(mailboxes), event_body("Opening an account", 2))

    assert await mailboxes.calendar.change_key_of(user_id, other.id) is None


# ----- finding the service's events ----------------------------------------------------------


async def test_events_are_found_by_their_coconut_id(mailboxes: MailboxesSide) -> None:
    """Before a retried create, and for a disconnect: the service's events, never a person's,
    never another mailbox's."""
    user_id, neighbour = mailbox(mailboxes), mailbox(mailboxes)
    key, other_key = unique("appointment:A"), unique("unavailability:N")
    appointment = await create(mailboxes, user_id, event_body("Opening an account", 2), key)
    absence = await create(mailboxes, user_id, event_body("Vacation", 3), other_key)
    mailboxes.person_creates(user_id, event_body("Dentist", 4))
    await create(mailboxes, neighbour, event_body("Opening an account", 2), key)

    assert await mailboxes.calendar.find_events_for(user_id, key) == [appointment]
    assert await mailboxes.calendar.find_events_for(user_id, unique("appointment:A")) == []
    service = await mailboxes.calendar.find_service_events(user_id)
    assert sorted(service, key=lambda e: e.id) == sorted([appointment, absence], key=lambda e: e.id)


async def test_a_coconut_id_with_a_quote_is_found(mailboxes: MailboxesSide) -> None:
    """Coconut ids are unchecked: one with a quote must not break the OData filter."""
    user_id, key = mailbox(mailboxes), "appointment:" + unique("O'Brien")
    created = await create(mailboxes, user_id, event_body("Opening an account", 2), key)

    assert await mailboxes.calendar.find_events_for(user_id, key) == [created]


# ----- delta ---------------------------------------------------------------------------------


async def test_a_first_round_lists_the_events_in_its_window_in_utc(
    mailboxes: MailboxesSide,
) -> None:
    user_id = mailbox(mailboxes)
    inside = await create(mailboxes, user_id, event_body("Opening an account", 2, hour=9))
    persons = mailboxes.person_creates(user_id, event_body("Dentist", 5, hour=16, hours=2))
    await create(mailboxes, user_id, event_body("Later", OUTSIDE))

    items, _ = await whole_round(mailboxes.calendar, user_id, window=WINDOW)

    assert set(items) == {inside.id, persons}
    assert not any(removed(item) for item in items.values())
    assert (instant(items[inside.id]["start"]), instant(items[inside.id]["end"])) == (
        utc(2, 9),
        utc(2, 10),
    )
    assert (instant(items[persons]["start"]), instant(items[persons]["end"])) == (
        utc(5, 16),
        utc(5, 18),
    )
    assert items[persons]["subject"] == "Dentist"
    assert items[persons]["showAs"] == "busy"
    assert items[inside.id]["changeKey"] == inside.change_key


async def test_a_round_with_nothing_changed_lists_nothing(mailboxes: MailboxesSide) -> None:
    user_id = mailbox(mailboxes)
    await create(mailboxes, user_id, event_body("Opening an account", 2))
    _, link = await whole_round(mailboxes.calendar, user_id, window=WINDOW)

    items, _ = await whole_round(mailboxes.calendar, user_id, link=link)

    assert items == {}


async def test_the_next_round_lists_what_changed_and_what_left(mailboxes: MailboxesSide) -> None:
    """Changed and new events whole; deleted ones, and ones moved out of the window, as
    `@removed`; untouched ones not at all."""
    user_id = mailbox(mailboxes)
    edited = await create(mailboxes, user_id, event_body("Opening an account", 2))
    deleted = await create(mailboxes, user_id, event_body("Mortgage", 3))
    moved_out = await create(mailboxes, user_id, event_body("Insurance", 4))
    untouched = await create(mailboxes, user_id, event_body("Savings", 5))
    _, link = await whole_round(mailboxes.calendar, user_id, window=WINDOW)

    update = await mailboxes.calendar.update_event(
        user_id, edited.id, {"subject": "Opening two accounts"}
    )
    await mailboxes.calendar.delete_event(user_id, deleted.id)
    await mailboxes.calendar.update_event(user_id, moved_out.id, event_body("Insurance", OUTSIDE))
    added = mailboxes.person_creates(user_id, event_body("Dentist", 6, hour=8))
    items, next_link = await whole_round(mailboxes.calendar, user_id, link=link)

    assert set(items) == {edited.id, deleted.id, moved_out.id, added}
    assert untouched.id not in items
    assert removed(items[deleted.id])
    assert removed(items[moved_out.id])
    assert items[deleted.id]["@removed"] == {"reason": "deleted"}
    assert not removed(items[edited.id])
    assert not removed(items[added])
    assert items[edited.id]["subject"] == "Opening two accounts"
    assert items[edited.id]["changeKey"] == update.change_key
    assert instant(items[added]["start"]) == utc(6, 8)
    # And the round after that starts from here.
    assert (await whole_round(mailboxes.calendar, user_id, link=next_link))[0] == {}


async def test_an_event_made_and_gone_between_two_rounds_is_in_neither(
    mailboxes: MailboxesSide,
) -> None:
    """Delta reports what changed in what the client was given: an event created after one
    round and deleted or moved away before the next was never given, and nothing says it left
    (graph/delta-query-overview; Exchange tracks the items a sync state has handed out)."""
    user_id = mailbox(mailboxes)
    await create(mailboxes, user_id, event_body("Opening an account", 2))
    _, link = await whole_round(mailboxes.calendar, user_id, window=WINDOW)

    deleted = await create(mailboxes, user_id, event_body("Mortgage", 3))
    moved = await create(mailboxes, user_id, event_body("Insurance", 4))
    mailboxes.person_deletes(user_id, deleted.id)
    mailboxes.person_moves_away(user_id, moved.id)
    items, _ = await whole_round(mailboxes.calendar, user_id, link=link)

    assert items == {}


async def test_a_round_of_many_events_pages_through_each_once(mailboxes: MailboxesSide) -> None:
    user_id = mailbox(mailboxes)
    created = {
        (await create(mailboxes, user_id, event_body(f"Slot {n}", 2 + n % 5, hour=8 + n % 8))).id
        for n in range(23)
    }

    items, _ = await whole_round(mailboxes.calendar, user_id, window=WINDOW)

    assert set(items) == created


async def test_a_link_graph_forgot_is_expired(mailboxes: MailboxesSide) -> None:
    user_id = mailbox(mailboxes)
    await create(mailboxes, user_id, event_body("Opening an account", 2))
    _, link = await whole_round(mailboxes.calendar, user_id, window=WINDOW)

    mailboxes.evict_delta_state(user_id)

    with pytest.raises(DeltaExpired):
        await mailboxes.calendar.calendar_delta(user_id, link=link)


async def test_a_link_of_another_mailbox_is_unknown(
    mailboxes: MailboxesSide, request: pytest.FixtureRequest
) -> None:
    """A cursor kept from the mailbox a staff member had before (their e-mail now finds
    another user) must start a new round in the new mailbox, not read the old one."""
    real_adapter_diverges(
        request,
        "sync/graph/calendar.py GraphCalendar.calendar_delta follows the link's own URL whatever "
        "user_id it is given: another mailbox's link reads that mailbox",
    )
    user_id, other = mailbox(mailboxes), mailbox(mailboxes)
    _, link = await whole_round(mailboxes.calendar, other, window=WINDOW)

    with pytest.raises(DeltaExpired):
        await mailboxes.calendar.calendar_delta(user_id, link=link)


# ----- mailboxes and items Graph cannot serve ------------------------------------------------


async def test_a_mailbox_graph_cannot_serve_is_unreachable_until_it_is_back(
    mailboxes: MailboxesSide,
) -> None:
    """The user is in the directory, the mailbox is not reachable (FACTS, "Mailboxes Graph
    cannot serve"): every request says so, none says an event is gone."""
    mail = f"{unique('kim')}@bank.example"
    user_id = mailboxes.add_user(mail)
    created = await create(mailboxes, user_id, event_body("Opening an account", 2))
    calendar = mailboxes.calendar

    mailboxes.set_reachable(user_id, False)

    requests: list[Callable[[], Awaitable[object]]] = [
        lambda: calendar.find_user(mail),
        lambda: create(mailboxes, user_id, event_body("Mortgage", 3)),
        lambda: calendar.update_event(user_id, created.id, event_body("Moved", 4)),
        lambda: calendar.delete_event(user_id, created.id),
        lambda: calendar.find_events_for(user_id, unique("appointment:A")),
        lambda: calendar.find_service_events(user_id),
        lambda: calendar.change_key_of(user_id, created.id),
        lambda: calendar.calendar_delta(user_id, window=WINDOW),
    ]
    for request in requests:
        with pytest.raises(MailboxUnreachable):
            await request()
    mailboxes.set_reachable(user_id, True)
    assert await calendar.change_key_of(user_id, created.id) == created.change_key
    assert mailboxes.event_count(user_id) == 1


async def test_an_item_graph_keeps_failing_fails_alone(mailboxes: MailboxesSide) -> None:
    """Graph answers 500 to everything about one event (FACTS): each request about that item
    fails as worth retrying later, while the rest of the mailbox works."""
    user_id = mailbox(mailboxes)
    failing_key, fine_key = unique("appointment:A"), unique("appointment:A")
    failing = await create(mailboxes, user_id, event_body("Opening an account", 2), failing_key)
    fine = await create(mailboxes, user_id, event_body("Mortgage", 3), fine_key)
    mailboxes.fail_item(failing_key)
    calendar = mailboxes.single_attempt()

    requests: list[Callable[[], Awaitable[object]]] = [
        lambda: calendar.create_event(
            user_id,
            event_body("Opening an account", 2),
            transaction_id=unique("tx"),
            coconut_key=failing_key,
        ),
        lambda: calendar.update_event(user_id, failing.id, event_body("Moved", 4)),
        lambda: calendar.delete_event(user_id, failing.id),
        lambda: calendar.find_events_for(user_id, failing_key),
        lambda: calendar.change_key_of(user_id, failing.id),
    ]
    for request in requests:
        with pytest.raises(GraphRetryable) as raised:
            await request()
        assert raised.value.status == 500

    assert await calendar.find_events_for(user_id, fine_key) == [fine]
    moved = await calendar.update_event(user_id, fine.id, event_body("Mortgage", 4))
    service = await calendar.find_service_events(user_id)
    assert sorted(e.id for e in service) == sorted([failing.id, fine.id])
    items, _ = await whole_round(calendar, user_id, window=WINDOW)
    assert set(items) == {failing.id, fine.id}
    assert items[fine.id]["changeKey"] == moved.change_key
    assert mailboxes.event_count(user_id) == 2


async def test_an_item_graph_keeps_failing_on_fails_in_deleted_items_too(
    mailboxes: MailboxesSide,
) -> None:
    """A person deleting the event does not stop Graph failing on it: asked about its change
    key, Graph answers 500, not "gone"."""
    user_id = mailbox(mailboxes)
    failing_key = unique("appointment:A")
    failing = await create(mailboxes, user_id, event_body("Opening an account", 2), failing_key)
    mailboxes.fail_item(failing_key)
    mailboxes.person_deletes(user_id, failing.id)

    with pytest.raises(GraphRetryable) as raised:
        await mailboxes.single_attempt().change_key_of(user_id, failing.id)

    assert raised.value.status == 500


# ----- throttling ----------------------------------------------------------------------------


async def test_throttling_answers_retry_after_as_the_delay(mailboxes: MailboxesSide) -> None:
    """A wait longer than a request may sleep goes back to the worker, which puts the message
    back for exactly that long; the throttled create did not happen."""
    user_id = mailbox(mailboxes)
    mailboxes.throttle(user_id, retry_after=37)

    with pytest.raises(GraphRetryable) as raised:
        await create(mailboxes, user_id, event_body("Opening an account", 2))

    assert (raised.value.status, raised.value.delay) == (429, 37.0)
    assert mailboxes.event_count(user_id) == 0


async def test_a_short_throttle_is_waited_out(
    mailboxes: MailboxesSide, request: pytest.FixtureRequest
) -> None:
    memory_adapter_diverges(request, ANSWERS_EVERY_FAULT)
    user_id = mailbox(mailboxes)
    mailboxes.throttle(user_id, retry_after=1)

    written = await create(mailboxes, user_id, event_body("Opening an account", 2))

    assert await mailboxes.calendar.change_key_of(user_id, written.id) == written.change_key
    assert mailboxes.event_count(user_id) == 1


async def test_a_create_whose_answer_was_lost_is_retried_into_the_same_event(
    mailboxes: MailboxesSide, request: pytest.FixtureRequest
) -> None:
    """The POST happened, its answer did not arrive: the retry, with the same transaction id,
    answers with that event and makes no second one. The answer shows the event as it is by
    then, so its changeKey is not taken for the service's own (None: the next delta round
    that lists the event compares it with the draft's)."""
    memory_adapter_diverges(request, ANSWERS_EVERY_FAULT)
    user_id, key = mailbox(mailboxes), unique("appointment:A")
    mailboxes.lose_next_create_answer(user_id)

    written = await create(mailboxes, user_id, event_body("Opening an account", 2), key)

    assert mailboxes.event_count(user_id) == 1
    [found] = await mailboxes.calendar.find_events_for(user_id, key)
    assert (found.id, written.change_key) == (written.id, None)
