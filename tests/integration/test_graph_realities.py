"""Graph as it really is, on the local stack: mailboxes Graph cannot serve, which 404 means an
event is gone, time zones the service cannot map, events a person deleted or moved to another
calendar, failures that last, transaction ids already spent, expired tokens, and change
notifications (handshake, settings, a subscription create whose answer was lost).

Outcomes are read back from the Graph emulator (calendars, Deleted Items, other calendars,
request counters, fault rules, subscriptions), the Coconut emulator (busy time), the service's
tables and the ops API. Two stacks are shared by the module: a quiet one (no timer, no
notifications: every sync is one the test caused) and a live one (the timer every few seconds
and change notifications on). Each test uses staff members of its own, and faults are cleared
after each test.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from local.azurite import REPO_ROOT
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.payloads import Envelope
from local.graph_emulator.server import GraphEmulator
from local.stack import LocalStack
from sync.content_cipher import new_data_key
from sync.export.planning import transaction_id
from sync.graph.calendar import COCONUT_ID_PROPERTY
from sync.imports.busy_time import external_id_for
from sync.ops.client import OpsClient, parse_time
from sync.worker import RUN_BACKOFF_CAP, RUN_BACKOFF_FIRST, RUN_ERROR_AFTER
from tests.integration.conftest import deliver, eventually, when_free
from tests.integration.realities import (
    SERVICE,
    SOON,
    Advisor,
    ServiceTables,
    answers,
    appointment_id,
    book,
    copies,
    detail,
    fired,
    instant,
    key,
    new_advisor,
    new_coconut,
    ops_client,
    poisoned,
    requests_to,
    service_tables,
    subscriptions_of,
)

pytestmark = pytest.mark.integration

# The quiet stack's timer fires once a year: every sync there is one the test caused.
TIMER_OFF = "0 0 0 1 1 *"
# The live stack's timer: often enough that a test can wait for its next cycle.
TIMER_SECONDS = 3
LIVE_TIMER = f"*/{TIMER_SECONDS} * * * * *"
# A test waiting for the timer's next cycle allows for two, and for the run itself.
NEXT_CYCLE = 2 * TIMER_SECONDS + 15


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("quiet") / "host.log"
    with LocalStack(timer_schedule=TIMER_OFF, host_log=log) as running:
        yield running


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("live") / "host.log"
    with LocalStack(timer_schedule=LIVE_TIMER, notifications=True, host_log=log) as running:
        yield running


@pytest.fixture
def quiet(quiet_stack: LocalStack) -> Iterator[LocalStack]:
    yield quiet_stack
    quiet_stack.graph.clear_faults()


@pytest.fixture
def live(live_stack: LocalStack) -> Iterator[LocalStack]:
    yield live_stack
    live_stack.graph.clear_faults()


# --- waiting for outcomes ------------------------------------------------------------------------


async def reaches(
    ops: OpsClient, staff_id: str, status: str, within: float = 20.0
) -> dict[str, Any]:
    """The staff member's ops detail once it shows `status`."""
    return await eventually(
        lambda: (found := detail(ops, staff_id)).get("status") == status and found, within
    )


async def one_event(
    graph: GraphEmulator, box: str, item_key: str, within: float = 20.0
) -> dict[str, Any]:
    """The item's event once the primary calendar holds exactly one for it."""
    found = await eventually(
        lambda: len(events := copies(graph, box, item_key)) == 1 and events, within
    )
    return found[0]


def recorded_after(ops: OpsClient, staff_id: str, moment: str) -> bool:
    """A run recorded the staff member's status after `moment` (an ops answer's time)."""
    status_at = parse_time(detail(ops, staff_id).get("status_at"))
    since = parse_time(moment)
    return status_at is not None and since is not None and status_at > since


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [str(event["id"]) for event in events]


def graph_json(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


# --- 1. a mailbox Graph cannot serve -------------------------------------------------------------


async def test_mailbox_graph_cannot_serve_is_a_warning_and_the_timer_writes_it_once_reachable(
    live: LocalStack,
) -> None:
    stack = live
    hybrid = new_advisor(stack, "Dana", mailbox_error="MailboxNotEnabledForRESTAPI")
    unlicensed = new_advisor(stack, "Rui", mailbox_error="ResourceNotFound")
    colleague = new_advisor(stack, "Omar")
    booked = book(new_coconut(), [hybrid, unlicensed, colleague])

    assert await deliver(stack, booked) == [202]

    await one_event(stack.graph, colleague.box, key(booked))
    with ops_client(stack) as ops:
        for advisor, code in (
            (hybrid, "MailboxNotEnabledForRESTAPI"),
            (unlicensed, "ResourceNotFound"),
        ):
            warned = await reaches(ops, advisor.staff_id, "Warning")
            assert code in warned["reason"], "the reason names the cause"
            assert "@" not in warned["reason"]
            assert warned["pending_items"] == [key(booked)], "the appointment waits"
            assert stack.graph.events(advisor.box, "all") == []

        # The run completed: nothing is poisoned, and the mailbox is asked again at the timer's
        # cadence (one request a cycle), not in a loop.
        asked = requests_to(stack.graph, hybrid.box)
        cycles = 3
        await asyncio.sleep(cycles * TIMER_SECONDS)
        assert requests_to(stack.graph, hybrid.box) - asked <= cycles + 2
        assert poisoned(ops, hybrid.staff_id) == []
        assert poisoned(ops, unlicensed.staff_id) == []

        stack.graph.set_mailbox(hybrid.box, enabled=True)
        stack.graph.set_mailbox(unlicensed.box, enabled=True)
        for advisor in (hybrid, unlicensed):
            await one_event(stack.graph, advisor.box, key(booked), within=NEXT_CYCLE)
            healed = await reaches(ops, advisor.staff_id, "Syncing")
            assert healed["reason"] == ""
            assert healed["pending_items"] == []
    assert len(copies(stack.graph, colleague.box, key(booked))) == 1


# --- 2. only ErrorItemNotFound means gone --------------------------------------------------------


async def test_a_mailbox_404_never_counts_an_event_as_gone(quiet: LocalStack) -> None:
    stack = quiet
    kim = new_advisor(stack, "Kim")
    coconut = new_coconut()
    moved = book(coconut, [kim])
    cancelled = book(coconut, [kim], start=SOON + timedelta(hours=2))
    assert await deliver(stack, moved, cancelled) == [202, 202]
    with service_tables(stack) as tables, ops_client(stack) as ops:
        await eventually(
            lambda: tables.settled(kim.staff_id) and len(stack.graph.events(kim.box)) == 2
        )
        [original] = copies(stack.graph, kim.box, key(moved))
        [doomed] = copies(stack.graph, kim.box, key(cancelled))

        # Graph stops serving the mailbox (the user is still found): its 404s are not
        # ErrorItemNotFound, so neither event may be taken for gone.
        stack.graph.set_mailbox(kim.box, enabled=False, error="ResourceNotFound")
        later = SOON + timedelta(days=1)
        changes = (
            coconut.reschedule(appointment_id(moved), later, later + timedelta(minutes=30)),
            coconut.cancel(appointment_id(cancelled)),
        )
        assert await deliver(stack, *changes) == [202, 202]

        warned = await reaches(ops, kim.staff_id, "Warning")
        assert "ResourceNotFound" in warned["reason"]
        await eventually(lambda: not tables.staff(kim.staff_id).get("LeaseOwner"))
        for item, event in ((moved, original), (cancelled, doomed)):
            row = tables.row(kim.staff_id, key(item))
            assert row["EventId"] == event["id"], "the link is kept"
            assert row["Generation"] == 0, "the link is not retired"
            assert row["Pending"] is True, "the change waits for the mailbox"
        assert sorted(detail(ops, kim.staff_id)["pending_items"]) == sorted(
            [key(moved), key(cancelled)]
        )

        stack.graph.set_mailbox(kim.box, enabled=True)
        assert await deliver(stack, coconut.change_notes(appointment_id(moved), "Bring ID")) == [
            202
        ]

        def caught_up() -> dict[str, Any] | None:
            found = copies(stack.graph, kim.box, key(moved))
            if (
                tables.settled(kim.staff_id)
                and len(found) == 1
                and "Bring ID" in found[0]["body"]["content"]
                and not copies(stack.graph, kim.box, key(cancelled))
            ):
                return found[0]
            return None

        event = await eventually(caught_up)
        assert event["id"] == original["id"], "the same event, rescheduled"
        assert instant(event["start"]) == later
        trashed = copies(stack.graph, kim.box, key(cancelled), "deletedItems")
        assert ids(trashed) == [doomed["id"]], "the cancelled one is deleted, not lost"
        assert answers(stack.graph, kim.box)["POST"] == {"201": 2}, "nothing was made again"
        assert (await reaches(ops, kim.staff_id, "Syncing"))["reason"] == ""


# --- 3. time zones Graph reports that the service cannot map -------------------------------------


CUSTOM_ZONES = ("Customized Time Zone", "tzone://Microsoft/Custom")
WINDOWS_ONLY_ZONES = ("Mid-Atlantic Standard Time", "Kamchatka Standard Time")
IANA_ZONES = ("Europe/Berlin", "America/Argentina/Buenos_Aires")
# Daylight saving time where the zone has it (Mid-Atlantic's own rule included).
SUMMER = datetime(2027, 7, 15, 10, 0, tzinfo=ZoneInfo("America/Toronto"))


async def test_zones_the_service_cannot_map_are_written_in_utc_at_exact_instants_and_named(
    quiet: LocalStack,
) -> None:
    stack = quiet
    zones = (*CUSTOM_ZONES, *WINDOWS_ONLY_ZONES, *IANA_ZONES)
    advisors = {zone: new_advisor(stack, "Ana", time_zone=zone) for zone in zones}
    coconut = new_coconut()
    bookings = {zone: book(coconut, [advisors[zone]], start=SUMMER) for zone in zones}

    assert await deliver(stack, *bookings.values()) == [202] * len(zones)

    with ops_client(stack) as ops:
        for zone in zones:
            advisor = advisors[zone]
            event = await one_event(stack.graph, advisor.box, key(bookings[zone]))
            assert instant(event["start"]) == SUMMER, zone
            assert instant(event["end"]) == SUMMER + timedelta(minutes=30), zone
            status = await reaches(ops, advisor.staff_id, "Syncing")
            written_in = event["originalStartTimeZone"]
            if zone in CUSTOM_ZONES or written_in == "UTC":
                assert written_in == "UTC", zone
                assert zone in status["reason"], "the reason names the zone not understood"
                assert "UTC" in status["reason"]
            else:
                assert written_in == zone, "a zone the service maps is the mailbox's own"
                assert status["reason"] == ""
            if zone in IANA_ZONES:
                assert written_in == zone, "IANA names work as zones"


# --- 4. events a person deleted or moved to another calendar -------------------------------------


@dataclass(frozen=True)
class Drifted:
    """Two of a staff member's appointments whose events a person deleted and moved."""

    advisor: Advisor
    coconut: Coconut
    deleted: Envelope
    moved: Envelope
    trashed: dict[str, Any]  # the deleted event, now in Deleted Items
    dragged: dict[str, Any]  # the moved event, now in the "Personal" calendar

    @property
    def keys(self) -> tuple[str, str]:
        return key(self.deleted), key(self.moved)


async def deleted_and_moved(stack: LocalStack, *, subscribed: bool) -> Drifted:
    """A staff member with two synced events; a person then deletes one and drags the other
    to another calendar."""
    kim = new_advisor(stack, "Kim")
    coconut = new_coconut()
    deleted = book(coconut, [kim])
    moved = book(coconut, [kim], start=SOON + timedelta(hours=3))
    assert await deliver(stack, deleted, moved) == [202, 202]
    with service_tables(stack) as tables:
        await eventually(
            lambda: (
                tables.settled(kim.staff_id)
                and len(stack.graph.events(kim.box)) == 2
                and (bool(subscriptions_of(stack.graph, kim.box)) or not subscribed)
            )
        )
    [trashed] = copies(stack.graph, kim.box, key(deleted))
    [dragged] = copies(stack.graph, kim.box, key(moved))
    stack.graph.add_calendar(kim.box, "Personal")
    stack.graph.delete_event_as_person(kim.box, trashed["id"])
    stack.graph.move_event_as_person(kim.box, dragged["id"], "Personal")
    assert stack.graph.events(kim.box) == []
    return Drifted(kim, coconut, deleted, moved, trashed, dragged)


def live_events(stack: LocalStack, drifted: Drifted) -> dict[str, dict[str, Any]] | None:
    """Each item's event in the primary calendar, once there is exactly one for each."""
    found = {k: copies(stack.graph, drifted.advisor.box, k) for k in drifted.keys}
    if all(len(events) == 1 for events in found.values()):
        return {k: events[0] for k, events in found.items()}
    return None


def copies_stay_put(stack: LocalStack, drifted: Drifted) -> None:
    """The deleted event is still in Deleted Items (the only one there), the moved one still in
    "Personal" as the person left it."""
    box = drifted.advisor.box
    deleted_key, moved_key = drifted.keys
    assert ids(copies(stack.graph, box, deleted_key, "deletedItems")) == [drifted.trashed["id"]]
    [dragged] = copies(stack.graph, box, moved_key, "Personal")
    assert dragged["id"] == drifted.dragged["id"]
    assert instant(dragged["start"]) == instant(drifted.dragged["start"])
    assert dragged["subject"] == drifted.dragged["subject"]


async def test_deleted_and_moved_events_come_back_once_from_delta_and_copies_stay_put(
    live: LocalStack,
) -> None:
    stack = live
    drifted = await deleted_and_moved(stack, subscribed=True)
    deleted_key, moved_key = drifted.keys

    # Delta reports both `@removed` (on the notification, at the latest on the timer's cycle).
    back = await eventually(lambda: live_events(stack, drifted), within=NEXT_CYCLE)
    assert back[deleted_key]["id"] != drifted.trashed["id"]
    assert back[moved_key]["id"] != drifted.dragged["id"]
    copies_stay_put(stack, drifted)

    # A change in Coconut reaches the live events only.
    later = SOON + timedelta(days=2)
    changes = [
        drifted.coconut.reschedule(appointment_id(booked), later, later + timedelta(minutes=30))
        for booked in (drifted.deleted, drifted.moved)
    ]
    assert await deliver(stack, *changes) == [202, 202]

    def rescheduled() -> dict[str, dict[str, Any]] | None:
        found = live_events(stack, drifted)
        moved_on = found is not None and all(instant(e["start"]) == later for e in found.values())
        return found if moved_on else None

    now = await eventually(rescheduled)
    assert {k: e["id"] for k, e in now.items()} == {k: e["id"] for k, e in back.items()}
    copies_stay_put(stack, drifted)

    # Later cycles (timer, notifications) find nothing more to do.
    with service_tables(stack) as tables:
        for _ in range(2):
            synced = tables.staff(drifted.advisor.staff_id)["LastSyncAt"]
            await eventually(
                lambda: tables.staff(drifted.advisor.staff_id)["LastSyncAt"] > synced,  # noqa: B023 - awaited at once
                within=NEXT_CYCLE,
            )
    assert live_events(stack, drifted) is not None
    assert len(stack.graph.events(drifted.advisor.box)) == 2
    copies_stay_put(stack, drifted)

    # Cancelled, the live event goes; the copy the person moved stays where they put it.
    assert await deliver(stack, drifted.coconut.cancel(appointment_id(drifted.moved))) == [202]
    await eventually(lambda: not copies(stack.graph, drifted.advisor.box, moved_key))
    copies_stay_put(stack, drifted)


async def test_full_resync_puts_back_one_live_event_for_each_deleted_or_moved_one(
    quiet: LocalStack,
) -> None:
    stack = quiet
    drifted = await deleted_and_moved(stack, subscribed=False)
    staff_id = drifted.advisor.staff_id
    await asyncio.sleep(1.0)
    assert stack.graph.events(drifted.advisor.box) == [], "nothing syncs here unasked"

    with ops_client(stack) as ops:
        asked = (await when_free(ops, staff_id, "resync"))["requested_at"]
        await eventually(lambda: recorded_after(ops, staff_id, asked))
        back = live_events(stack, drifted)
        assert back is not None, "one live event for each"
        assert back[drifted.keys[0]]["id"] != drifted.trashed["id"]
        assert back[drifted.keys[1]]["id"] != drifted.dragged["id"]
        copies_stay_put(stack, drifted)

        # Once more: the repaired calendar is left as it is.
        again = (await when_free(ops, staff_id, "resync"))["requested_at"]
        await eventually(lambda: recorded_after(ops, staff_id, again))
    assert live_events(stack, drifted) == back
    copies_stay_put(stack, drifted)


# --- 5. failures that last -----------------------------------------------------------------------


@dataclass(frozen=True)
class FailedRun:
    """A run that failed for a reason that may pass, as the staff record shows it."""

    failures: int
    failing_since: datetime
    retry_at: datetime
    delay: float  # seconds from when the failure was recorded to the next attempt
    status: str
    reason: str


async def failed_run(
    tables: ServiceTables, advisor: Advisor, after: int, within: float
) -> FailedRun:
    """The next failed run recorded after `after` failures."""
    record = await eventually(
        lambda: (
            (found := tables.staff(advisor.staff_id)).get("Failures", 0) > after
            and not found.get("LeaseOwner")
            and found
        ),
        within,
    )
    retry_at = record["ThrottledUntil"]
    return FailedRun(
        failures=record["Failures"],
        failing_since=record["FailingSince"],
        retry_at=retry_at,
        delay=(retry_at - datetime.now(UTC)).total_seconds(),
        status=record.get("Status", ""),
        reason=record.get("Reason", ""),
    )


@dataclass(frozen=True)
class BackOff:
    runs: list[FailedRun]
    requests_while_waiting: int


async def back_off_of(stack: LocalStack, tables: ServiceTables, advisor: Advisor) -> BackOff:
    """Two failed runs as they come, then a third once the record says the mailbox has been
    failing for longer than the Error threshold (no test waits ten minutes)."""
    first = await failed_run(tables, advisor, after=0, within=30)
    asked = requests_to(stack.graph, advisor.box)
    # The timer's cycles come and go meanwhile.
    await asyncio.sleep(max(0.0, (first.retry_at - datetime.now(UTC)).total_seconds() - 1.0))
    waiting = requests_to(stack.graph, advisor.box) - asked
    second = await failed_run(tables, advisor, after=first.failures, within=first.delay + 20)
    long_ago = datetime.now(UTC) - RUN_ERROR_AFTER - timedelta(minutes=1)
    await eventually(lambda: tables.pretend_failing_since(advisor.staff_id, long_ago, 9))
    third = await failed_run(tables, advisor, after=9, within=second.delay + 20)
    return BackOff([first, second, third], waiting)


async def test_mailbox_that_keeps_failing_backs_off_doubling_to_a_cap_then_turns_error(
    live: LocalStack,
) -> None:
    stack = live
    unavailable, dropping = new_advisor(stack, "Lea"), new_advisor(stack, "Max")
    coconut = new_coconut()
    bookings = [book(coconut, [unavailable]), book(coconut, [dropping])]
    assert await deliver(stack, *bookings) == [202, 202]
    with service_tables(stack) as tables, ops_client(stack) as ops:
        await eventually(
            lambda: all(
                tables.settled(a.staff_id) and stack.graph.events(a.box)
                for a in (unavailable, dropping)
            )
        )
        stack.graph.fail_mailbox(unavailable.box, 503)
        stack.graph.fail_mailbox(dropping.box, "drop")
        later = SOON + timedelta(days=1)
        changes = [
            coconut.reschedule(appointment_id(b), later, later + timedelta(minutes=30))
            for b in bookings
        ]
        assert await deliver(stack, *changes) == [202, 202]

        observed = await asyncio.gather(
            back_off_of(stack, tables, unavailable), back_off_of(stack, tables, dropping)
        )
        for advisor, seen in zip((unavailable, dropping), observed, strict=True):
            first, second, third = seen.runs
            assert [first.failures, second.failures, third.failures] == [1, 2, 10]
            assert first.failing_since == second.failing_since, "failing since the first"
            assert seen.requests_while_waiting == 0, "nothing reaches the mailbox meanwhile"
            # 5 s, doubling (a wait Graph asked for inline, longer than 5 s, counts instead).
            assert RUN_BACKOFF_FIRST - 1.5 <= first.delay <= 8.5
            assert 2 * RUN_BACKOFF_FIRST - 1.5 <= second.delay <= 2 * RUN_BACKOFF_FIRST + 0.5
            assert second.delay > first.delay
            assert first.status == second.status == "Syncing", "not an error yet"
            # Ten minutes on: Error, and retried at the cap.
            assert RUN_BACKOFF_CAP - 3 <= third.delay <= RUN_BACKOFF_CAP + 0.5
            assert third.status == "Error"
            assert "Microsoft Graph has been failing since" in third.reason
            shown = detail(ops, advisor.staff_id)
            assert (shown["status"], shown["reason"]) == ("Error", third.reason)
            assert events_as_written(stack.graph, advisor.box) == [SOON]
        assert abs(observed[0].runs[0].delay - RUN_BACKOFF_FIRST) <= 1.5, "503: 5 s first"


def events_as_written(graph: GraphEmulator, box: str) -> list[datetime]:
    """When the mailbox's events start."""
    return [instant(event["start"]) for event in graph.events(box)]


def busy_event(graph: GraphEmulator, box: str, start: datetime) -> str:
    """A person's own busy hour in Outlook; its id."""
    body = {
        "subject": "Physio",
        "start": graph_json(start),
        "end": graph_json(start + timedelta(hours=1)),
        "showAs": "busy",
    }
    return graph.create_event_as_person(box, body).id


async def imported(stack: LocalStack, advisor: Advisor, event_id: str, within: float) -> None:
    """Wait until the person's own event is a busy block in Coconut."""
    await eventually(
        lambda: external_id_for(event_id) in stack.coconut.external_events(advisor.staff_id),
        within,
    )


async def imported_unless_the_run_fails(
    stack: LocalStack, tables: ServiceTables, advisor: Advisor, event_id: str
) -> None:
    """The person's own event becomes a busy block in Coconut; a run that fails as a whole
    (so no import) ends the wait at once."""
    block = external_id_for(event_id)

    def settled() -> bool:
        busy = stack.coconut.external_events(advisor.staff_id)
        return block in busy or tables.staff(advisor.staff_id).get("Failures", 0) > 0

    await eventually(settled, within=NEXT_CYCLE)
    assert block in stack.coconut.external_events(advisor.staff_id), "no import: the run failed"


async def test_an_event_that_keeps_failing_is_set_aside_while_the_rest_of_the_mailbox_syncs(
    live: LocalStack,
) -> None:
    stack = live
    lee = new_advisor(stack, "Lee")
    coconut = new_coconut()
    bookings = [book(coconut, [lee], start=SOON + timedelta(hours=h)) for h in (0, 2, 4)]
    failing = bookings[0]
    assert await deliver(stack, *bookings) == [202] * 3
    with ops_client(stack) as ops, service_tables(stack) as tables:
        await eventually(
            lambda: (
                tables.settled(lee.staff_id)
                and len(stack.graph.events(lee.box)) == 3
                and bool(subscriptions_of(stack.graph, lee.box))
            )
        )
        [event] = copies(stack.graph, lee.box, key(failing))
        rule = stack.graph.fail_event(event["id"])
        # All three change while Graph cannot serve the mailbox: the run that finds it
        # reachable again meets them together.
        stack.graph.set_mailbox(lee.box, enabled=False)
        later = SOON + timedelta(days=1)
        changes = [
            coconut.reschedule(
                appointment_id(b),
                later + timedelta(hours=h),
                later + timedelta(hours=h, minutes=30),
            )
            for h, b in enumerate(bookings)
        ]
        assert await deliver(stack, *changes) == [202] * 3
        await eventually(lambda: len(detail(ops, lee.staff_id).get("pending_items", [])) == 3)
        stack.graph.set_mailbox(lee.box, enabled=True)

        def moved_on(booked: Envelope, hours: int) -> bool:
            found = copies(stack.graph, lee.box, key(booked))
            return len(found) == 1 and instant(found[0]["start"]) == later + timedelta(hours=hours)

        await eventually(
            lambda: moved_on(bookings[1], 1) and moved_on(bookings[2], 2), within=NEXT_CYCLE
        )
        row = await eventually(
            lambda: (found := tables.row(lee.staff_id, key(failing))).get("Failures") and found
        )
        assert row["Failures"] == 1
        assert row["Pending"] is True
        assert row["LastError"], "the row says why"
        assert row["EventId"] == event["id"], "the link is kept"
        first_wait = (row["RetryAt"] - row["FailingSince"]).total_seconds()
        assert 25 <= first_wait <= 35, "retried on a back-off, 30 s first"
        assert instant(copies(stack.graph, lee.box, key(failing))[0]["start"]) == SOON
        shown = await eventually(
            lambda: (
                (d := detail(ops, lee.staff_id)).get("reason", "").startswith(key(failing)) and d
            )
        )
        assert shown["status"] == "Syncing"
        assert shown["pending_items"] == [key(failing)]
        attempts = fired(stack.graph, rule)

        # The rest of the mailbox goes on: the person's own busy time comes in …
        own = busy_event(stack.graph, lee.box, SOON + timedelta(days=2))
        await imported(stack, lee, own, within=NEXT_CYCLE)
        # … and the subscription is renewed when Graph asks.
        [subscription] = subscriptions_of(stack.graph, lee.box)
        stack.graph.state.send_lifecycle(subscription["id"], "reauthorizationRequired")
        renewed = await eventually(
            lambda: (
                (found := subscriptions_of(stack.graph, lee.box))
                and found[0]["expirationDateTime"] > subscription["expirationDateTime"]
                and found
            ),
            within=NEXT_CYCLE,
        )
        assert ids(renewed) == [subscription["id"]]
        if datetime.now(UTC) < row["RetryAt"]:
            assert fired(stack.graph, rule) == attempts, "not retried before its time"

        # Once Graph serves it again, an operator's resync writes it without waiting.
        stack.graph.clear_fault(rule)
        await when_free(ops, lee.staff_id, "resync")
        await eventually(lambda: moved_on(failing, 0))
        healed = await eventually(
            lambda: (
                (d := detail(ops, lee.staff_id))["reason"] == "" and d["pending_items"] == [] and d
            )
        )
        assert healed["status"] == "Syncing"
        assert not tables.row(lee.staff_id, key(failing)).get("Failures")
        assert copies(stack.graph, lee.box, key(failing))[0]["id"] == event["id"]
    assert len(stack.graph.events(lee.box)) == 4


@dataclass(frozen=True)
class FailingCreate:
    advisor: Advisor
    failing: Envelope
    fine: list[Envelope]
    rule: str


async def create_failing_among_others(stack: LocalStack, ops: OpsClient) -> FailingCreate:
    """Three new appointments met by one run, the first of which Graph refuses to create
    (500 on every request about its Coconut id: the create, and a search for it)."""
    # Unreachable at first, so that the run that finds the mailbox meets all three.
    ivy = new_advisor(stack, "Ivy", mailbox_error="MailboxNotEnabledForRESTAPI")
    coconut = new_coconut()
    failing = book(coconut, [ivy])
    fine = [book(coconut, [ivy], start=SOON + timedelta(hours=h)) for h in (2, 4)]
    rule = stack.graph.fail_event(property_value=key(failing))
    assert await deliver(stack, failing, *fine) == [202] * 3
    await eventually(lambda: len(detail(ops, ivy.staff_id).get("pending_items", [])) == 3)
    stack.graph.set_mailbox(ivy.box, enabled=True)
    await eventually(
        lambda: all(len(copies(stack.graph, ivy.box, key(b))) == 1 for b in fine),
        within=NEXT_CYCLE,
    )
    return FailingCreate(ivy, failing, fine, rule)


async def test_an_appointment_graph_refuses_to_create_is_set_aside_and_the_import_goes_on(
    live: LocalStack,
) -> None:
    stack = live
    with ops_client(stack) as ops, service_tables(stack) as tables:
        case = await create_failing_among_others(stack, ops)
        ivy = case.advisor
        row = await eventually(
            lambda: (found := tables.row(ivy.staff_id, key(case.failing))).get("Failures") and found
        )
        assert row["Pending"] is True
        own = busy_event(stack.graph, ivy.box, SOON + timedelta(days=2))
        await imported_unless_the_run_fails(stack, tables, ivy, own)
        shown = await reaches(ops, ivy.staff_id, "Syncing")
        assert shown["reason"].startswith(key(case.failing))
        assert shown["pending_items"] == [key(case.failing)]


async def test_an_appointment_graph_refuses_to_create_on_its_own_does_not_hold_back_the_import(
    live: LocalStack,
) -> None:
    stack = live
    ann = new_advisor(stack, "Ann")
    coconut = new_coconut()
    assert await deliver(stack, book(coconut, [ann])) == [202]
    with service_tables(stack) as tables:
        await eventually(
            lambda: tables.settled(ann.staff_id) and bool(subscriptions_of(stack.graph, ann.box))
        )
        failing = book(coconut, [ann], start=SOON + timedelta(hours=2))
        rule = stack.graph.fail_event(property_value=key(failing))
        assert await deliver(stack, failing) == [202]
        await eventually(lambda: fired(stack.graph, rule) > 0)
        own = busy_event(stack.graph, ann.box, SOON + timedelta(days=1))
        await imported_unless_the_run_fails(stack, tables, ann, own)
        row = tables.row(ann.staff_id, key(failing))
        assert row.get("Failures"), "the failure is the item's, on its row"


async def test_a_failing_items_row_names_what_graph_answered(live: LocalStack) -> None:
    stack = live
    with ops_client(stack) as ops, service_tables(stack) as tables:
        case = await create_failing_among_others(stack, ops)
        row = await eventually(
            lambda: (
                (found := tables.row(case.advisor.staff_id, key(case.failing))).get("Failures")
                and found
            )
        )
        assert "500" in row["LastError"]
        assert "ErrorInternalServerError" in row["LastError"]


# --- 6. transaction ids already spent ------------------------------------------------------------


def post_earlier_attempt(graph: GraphEmulator, advisor: Advisor, item_key: str) -> str:
    """An event an earlier attempt made with the transaction id the service will use first for
    the item (generation 0), but with a body the service would no longer send: what a tenant
    holds when the service's own record of that attempt was lost."""
    response = httpx.post(
        f"{graph.base_url}/users/{advisor.box}/events",
        json={
            "subject": "Earlier attempt",
            "start": graph_json(SOON - timedelta(days=1)),
            "end": graph_json(SOON - timedelta(days=1) + timedelta(minutes=30)),
            "transactionId": transaction_id(advisor.staff_id, item_key, 0),
            "singleValueExtendedProperties": [{"id": COCONUT_ID_PROPERTY, "value": item_key}],
        },
        headers={"Prefer": 'IdType="ImmutableId"'},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_transaction_id_spent_on_an_event_in_deleted_items_moves_to_a_new_generation(
    quiet: LocalStack,
) -> None:
    stack = quiet
    jane = new_advisor(stack)
    booked = book(new_coconut(), [jane])
    earlier = post_earlier_attempt(stack.graph, jane, key(booked))
    stack.graph.delete_event_as_person(jane.box, earlier)

    assert await deliver(stack, booked) == [202]

    with service_tables(stack) as tables, ops_client(stack) as ops:
        await eventually(lambda: tables.settled(jane.staff_id))
        event = await one_event(stack.graph, jane.box, key(booked))
        assert event["id"] != earlier
        assert event["subject"] == SERVICE["name"]
        assert instant(event["start"]) == SOON
        assert tables.row(jane.staff_id, key(booked))["Generation"] == 1
        assert (await reaches(ops, jane.staff_id, "Syncing"))["reason"] == ""
    # One refusal, then the next generation's create: no loop.
    assert answers(stack.graph, jane.box)["POST"] == {"201": 2, "400": 1}
    assert ids(copies(stack.graph, jane.box, key(booked), "deletedItems")) == [earlier]


async def test_transaction_id_spent_on_an_event_still_in_the_calendar_finds_and_adopts_it(
    quiet: LocalStack,
) -> None:
    stack = quiet
    jane = new_advisor(stack)
    booked = book(new_coconut(), [jane])
    earlier = post_earlier_attempt(stack.graph, jane, key(booked))

    assert await deliver(stack, booked) == [202]

    with service_tables(stack) as tables:
        await eventually(lambda: tables.settled(jane.staff_id))
        event = await one_event(stack.graph, jane.box, key(booked))
        assert event["id"] == earlier, "the event found is brought up to date"
        assert event["subject"] == SERVICE["name"]
        assert instant(event["start"]) == SOON
        assert tables.row(jane.staff_id, key(booked))["Generation"] == 0
    assert answers(stack.graph, jane.box)["POST"] == {"201": 1, "400": 1}


async def test_create_whose_answers_were_lost_is_looked_up_before_it_is_posted_again(
    quiet: LocalStack,
) -> None:
    stack = quiet
    jane = new_advisor(stack)
    booked = book(new_coconut(), [jane])
    # Every attempt the first run makes is applied, and its answer lost.
    rule = stack.graph.lose_responses(
        "POST", rf"^/users/{jane.box}/events$", times=3, lost_as="drop"
    )

    assert await deliver(stack, booked) == [202]

    with service_tables(stack) as tables:
        await eventually(
            lambda: tables.settled(jane.staff_id) and len(stack.graph.events(jane.box)) == 1,
            within=40,
        )
        event = await one_event(stack.graph, jane.box, key(booked))
        assert event["subject"] == SERVICE["name"]
    assert fired(stack.graph, rule) == 3
    assert answers(stack.graph, jane.box)["POST"] == {"dropped": 3}, "looked up, not posted"


# --- 7. tokens and permissions -------------------------------------------------------------------


async def test_a_token_refused_once_is_retried_and_the_sync_goes_on(quiet: LocalStack) -> None:
    stack = quiet
    jane = new_advisor(stack)
    rule = stack.graph.add_fault({"kind": "invalidToken", "times": 1, "mailbox": jane.box})
    booked = book(new_coconut(), [jane])

    assert await deliver(stack, booked) == [202]

    await one_event(stack.graph, jane.box, key(booked))
    with ops_client(stack) as ops:
        assert (await reaches(ops, jane.staff_id, "Syncing"))["reason"] == ""
    assert fired(stack.graph, rule) == 1


async def test_a_token_graph_keeps_refusing_is_an_identity_error_and_403_names_the_rbac_scope(
    quiet: LocalStack,
) -> None:
    stack = quiet
    refused = new_advisor(stack, "Ravi")
    stack.graph.add_fault({"kind": "invalidToken", "mailbox": refused.box})
    outside = new_advisor(stack, "Olga", access_denied=True)
    colleague = new_advisor(stack, "Omar")
    booked = book(new_coconut(), [refused, outside, colleague])

    assert await deliver(stack, booked) == [202]

    await one_event(stack.graph, colleague.box, key(booked))
    with ops_client(stack) as ops:
        token = (await reaches(ops, refused.staff_id, "Error"))["reason"]
        assert "401" in token
        assert "token" in token
        assert "identity" in token
        assert "RBAC" not in token
        assert "scope" not in token
        rbac = (await reaches(ops, outside.staff_id, "Error"))["reason"]
        assert "403" in rbac
        assert "RBAC" in rbac
    refusals = sum(
        statuses.get("401", 0) for statuses in answers(stack.graph, refused.box).values()
    )
    assert refusals == 2, "retried once, not in a loop"


# --- 8. change notifications ---------------------------------------------------------------------


GRAPH_LIKE_TOKEN = (
    "Validation: Testing client application reachability for subscription Request-Id: "
    "6f1c1f0e-3d55-4f0b-9a57-2b8f3c4d9e21"
)


def test_validation_handshake_is_answered_while_storage_is_down(tmp_path: Path) -> None:
    log = tmp_path / "host.log"
    with LocalStack(timer_schedule=TIMER_OFF, notifications=True, host_log=log) as stack:
        assert stack.host is not None
        stack.azurite.stop()  # before anything asked the app for its storage
        for route in ("graph/notifications", "graph/lifecycle"):
            started = time.monotonic()
            answer = httpx.post(
                f"{stack.host.base_url}/api/{route}",
                params={"validationToken": GRAPH_LIKE_TOKEN},
                timeout=15,
            )
            assert time.monotonic() - started < 10, "within Graph's 10 s"
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            assert answer.text == GRAPH_LIKE_TOKEN
        # Without storage a graceful stop waits on the queue listener: end it as a crash.
        stack.kill_host()


VALID_SETTINGS = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0",
    "GRAPH_AUTH": "none",
    "COCONUT_API_BASE_URL": "http://127.0.0.1:9/api/v2",
    "COCONUT_API_KEY": "local-key",
    "COCONUT_WEBHOOK_SECRET": "local-secret",
    "SYNC_DATA_KEY": new_data_key(),
    "SYNC_TIMER_SCHEDULE": TIMER_OFF,
    "PUBLIC_BASE_URL": "https://sync.bank.example",
    "GRAPH_CLIENT_STATE": "c" * 128,
}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("PUBLIC_BASE_URL", "http://sync.bank.example"),
        ("GRAPH_CLIENT_STATE", "s" * 129),
    ],
)
def test_start_up_stops_naming_a_notification_setting_graph_would_refuse(
    setting: str, value: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in VALID_SETTINGS}
    env.update(VALID_SETTINGS)
    env[setting] = value
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "local.host", "--port", "0", "--script-root", str(REPO_ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert value not in lines[0], "a setting's value is never shown"


async def test_a_first_subscription_is_made_without_listing_the_apps_subscriptions(
    live: LocalStack,
) -> None:
    """Graph lists every subscription of the app: a bank's onboarding must not read them all
    once per mailbox. Only a create whose answer was lost (the next test) is looked for."""
    stack = live
    listing = stack.graph.lose_responses("GET", "^/subscriptions$", times=1000)
    kim = new_advisor(stack, "Kim")

    assert await deliver(stack, book(new_coconut(), [kim])) == [202]

    with service_tables(stack) as tables:
        recorded = await eventually(
            lambda: (found := tables.staff(kim.staff_id)).get("SubscriptionId") and found
        )
    assert ids(subscriptions_of(stack.graph, kim.box)) == [recorded["SubscriptionId"]]
    assert not recorded.get("SubscriptionCreatingSince"), "the create's mark is cleared"
    assert fired(stack.graph, listing) == 0


async def test_subscription_create_whose_answer_was_lost_leaves_exactly_one_subscription(
    live: LocalStack,
) -> None:
    stack = live
    rule = stack.graph.lose_responses("POST", "^/subscriptions$")
    pat = new_advisor(stack, "Pat")

    assert await deliver(stack, book(new_coconut(), [pat])) == [202]

    with service_tables(stack) as tables:
        await eventually(lambda: fired(stack.graph, rule) == 1)
        recorded = await eventually(
            lambda: (found := tables.staff(pat.staff_id)).get("SubscriptionId") and found
        )
        # Later cycles (the timer's) leave it so.
        for _ in range(2):
            synced = tables.staff(pat.staff_id)["LastSyncAt"]
            await eventually(
                lambda: tables.staff(pat.staff_id)["LastSyncAt"] > synced,  # noqa: B023 - awaited at once
                within=NEXT_CYCLE,
            )
        assert ids(subscriptions_of(stack.graph, pat.box)) == [recorded["SubscriptionId"]]
        assert tables.staff(pat.staff_id)["SubscriptionId"] == recorded["SubscriptionId"]
