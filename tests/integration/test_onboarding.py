"""Coconut as the source of truth, on the local stack: a staff member's first sync brings what
Coconut already holds, and the scheduled repair (`COCONUT_RECONCILE_SCHEDULE`) mends what lost
webhooks left behind (contracts/coconut-api.md, "Appointments and absences of a staff member").

Coconut's record is the emulator's: a change made to it without delivering its webhook is a lost
one. Outcomes are read back from the Graph emulator's mailboxes, the ops detail, the host's records
and the spans the function app writes, which tell which run made which request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from local.coconut_emulator.faults import FaultPlan
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.stack import LocalStack
from sync.ops.client import OpsClient
from tests.integration.conftest import deliver, eventually
from tests.integration.realities import detail, instant, ops_client
from tests.integration.source_of_truth import (
    APPOINTMENTS_ROUTE,
    VIDEO_SERVICE,
    Bank,
    Banker,
    Runs,
    book,
    command,
    crowd,
    deliver_meanwhile,
    deliver_unrecorded,
    graph_writes,
    item_id,
    key,
    lines,
    record_model,
    records,
    repairs,
    sender_model,
    shown_on_the_command_line,
)

pytestmark = pytest.mark.integration

# The roster is read every 4 s, and the scheduled repair runs every 4 s too, two seconds after
# it (its requests spread over 80 % of the period): a new staff member is found, and a lost
# webhook repaired, within seconds, and a repair seldom finds the timer's run holding the mailbox.
TIMER_SCHEDULE = "*/4 * * * * *"
RECONCILE_SCHEDULE = "2-59/4 * * * * *"
# A request that finds the mailbox busy waits for the lease's end at most (SYNC_LEASE_SECONDS).
STAFF_LEASE = 10
# Inside the import window (a day before the first sync to 180 days ahead).
SOON = (datetime.now(UTC) + timedelta(days=7)).replace(hour=15, minute=0, second=0, microsecond=0)
WITHIN = 45.0
TORONTO = ZoneInfo("America/Toronto")  # the zone Coconut's items are written in here


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces") / "spans.jsonl"


@pytest.fixture(scope="module")
def host_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host") / "host.log"


@pytest.fixture(scope="module")
def stack(trace_file: Path, host_log: Path) -> Iterator[LocalStack]:
    with LocalStack(
        timer_schedule=TIMER_SCHEDULE,
        staff_lease=STAFF_LEASE,
        host_log=host_log,
        extra_settings={
            "COCONUT_RECONCILE_SCHEDULE": RECONCILE_SCHEDULE,
            "SYNC_TRACE_FILE": str(trace_file),
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def runs(trace_file: Path) -> Runs:
    return Runs(trace_file)


@pytest.fixture
def ops(stack: LocalStack) -> Iterator[OpsClient]:
    with ops_client(stack) as client:
        yield client


@pytest.fixture
def bank(stack: LocalStack) -> Iterator[Bank]:
    hired = Bank(stack)
    yield hired
    hired.close()


async def listed(ops: OpsClient, banker: Banker, since: datetime | None = None) -> dict[str, Any]:
    """The staff member's ops detail once their listings were read (after `since`) and the run
    that read them finished in step."""

    def ready() -> dict[str, Any] | None:
        found = detail(ops, banker.staff_id)
        at = found.get("listed_at")
        if at is None or (since is not None and datetime.fromisoformat(at) <= since):
            return None
        return found if found["status"] == "Syncing" and found["pending"] == 0 else None

    return await eventually(ready, within=WITHIN)


# ----- onboarding --------------------------------------------------------------------------------


async def test_a_new_staff_member_finds_in_outlook_what_coconut_already_holds(
    stack: LocalStack, bank: Bank, ops: OpsClient
) -> None:
    jane, omar = bank.hire("Jane", on_roster=False), bank.hire("Omar", on_roster=False)
    coconut = record_model(stack)  # nothing delivered: the service has never heard of these
    booked = book(coconut, [jane], SOON)
    virtual = coconut.book(
        staff=[jane.ref],
        start=SOON + timedelta(days=1),
        end=SOON + timedelta(days=1, minutes=45),
        service=VIDEO_SERVICE,
        meeting_method=payloads.VIDEO_CALL,
    )
    team = book(coconut, [jane, omar], SOON + timedelta(days=2))
    cancelled = book(coconut, [jane], SOON + timedelta(days=3))
    coconut.cancel(item_id(cancelled))
    deleted = book(coconut, [jane], SOON + timedelta(days=4))
    coconut.delete(item_id(deleted))
    first_day = (SOON + timedelta(days=14)).astimezone(TORONTO).date()
    vacation = coconut.record_absence(
        staff=jane.ref,
        start=datetime.combine(first_day, time(), TORONTO),  # midnight to midnight, Toronto
        end=datetime.combine(first_day + timedelta(days=5), time(), TORONTO),
        title="Vacation",
        all_day=True,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    ended_hours_ago = book(coconut, [jane], now - timedelta(hours=4))
    ended_last_week = book(coconut, [jane], now - timedelta(days=7))

    jane.join()
    omar.join()

    expected = {key(booked), key(virtual), key(team), key(vacation), key(ended_hours_ago)}
    await eventually(lambda: set(jane.events()) == expected, within=WITHIN)
    await eventually(lambda: set(omar.events()) == {key(team)}, within=WITHIN)
    await listed(ops, jane)
    await listed(ops, omar)
    events = jane.events()
    assert all(len(copies) == 1 for copies in events.values()), jane.event_ids()
    [at_branch] = events[key(booked)]
    assert at_branch["subject"] == "Opening an account"
    assert at_branch["location"]["displayName"] == "100 King St W, Toronto, ON M5X 1A9"
    assert instant(at_branch["start"]) == SOON
    [online] = events[key(virtual)]
    assert online["subject"] == "Mortgage review"
    assert online["location"].get("displayName", "") == "", "virtual: no location"
    [away] = events[key(vacation)]
    assert away["subject"] == "Vacation"
    assert away["isAllDay"] is True
    assert key(cancelled) not in events, "recorded, not written"
    assert key(ended_last_week) not in events, "ended before the window"
    # A first sync is not a repair: nothing was lost.
    for banker in (jane, omar):
        found = detail(ops, banker.staff_id)
        assert (found["repaired_created"], found["repaired_updated"]) == (0, 0)
        assert found["repaired_removed"] == 0


async def test_a_booking_whose_webhook_was_lost_arrives_with_the_scheduled_repair(
    stack: LocalStack, bank: Bank, ops: OpsClient, runs: Runs, host_log: Path
) -> None:
    jane = bank.hire("Jane")
    await listed(ops, jane)

    lost = stack.coconut.book(
        staff=[jane.staff_id], start=SOON, end=SOON + timedelta(hours=1), service=VIDEO_SERVICE
    )
    booked_at = datetime.now(UTC)

    await eventually(lambda: key(lost) in jane.events(), within=WITHIN)
    [creator] = await eventually(
        lambda: [r for r in runs.of(jane.staff_id, since=booked_at) if runs.writes(r)]
    )
    assert creator["attributes"]["trigger"] == "reconcile"
    assert runs.writes(creator) == ["POST /v1.0/users/{id}/events"]

    def repaired() -> dict[str, Any] | None:
        found = detail(ops, jane.staff_id)
        return found if found["repaired_created"] == 1 else None

    shown = await eventually(repaired, within=WITHIN)
    assert datetime.fromisoformat(shown["repaired_at"]) > booked_at
    assert (shown["repaired_updated"], shown["repaired_removed"]) == (0, 0)
    assert repairs(host_log, jane.staff_id) == {"created": 1, "updated": 0, "removed": 0}
    printed = await shown_on_the_command_line(stack, jane.staff_id)
    for row in ("listed_at", "repaired_at", "repaired_created", "repaired_updated"):
        assert row in printed
    assert await deliver(stack, lost) == [202], "the webhook, late: a duplicate"


async def test_items_known_from_webhooks_and_listings_alike_are_written_once(
    stack: LocalStack, bank: Bank, ops: OpsClient, runs: Runs
) -> None:
    jane, omar = bank.hire("Jane", on_roster=False), bank.hire("Omar", on_roster=False)
    coconut = record_model(stack)
    listed_first = book(coconut, [jane, omar], SOON)  # its webhook comes after the listing
    jane.join()
    omar.join()
    await eventually(
        lambda: key(listed_first) in jane.events() and key(listed_first) in omar.events(),
        within=WITHIN,
    )

    sent_first = book(coconut, [jane], SOON + timedelta(days=1))  # the listing comes after it
    # Known from its webhook only: it ended before the listings' window.
    past = book(coconut, [jane], datetime.now(UTC) - timedelta(days=3))
    assert await deliver(stack, sent_first, past) == [202, 202]
    expected = {key(listed_first), key(sent_first), key(past)}
    await eventually(lambda: set(jane.events()) == expected, within=WITHIN)
    await listed(ops, jane)
    jane_ids, omar_ids = jane.event_ids(), omar.event_ids()
    writes = graph_writes(stack.graph, jane.box), graph_writes(stack.graph, omar.box)
    since = datetime.now(UTC)

    assert await deliver(stack, listed_first) == [202], "late, after the listing: a duplicate"

    def repaired_twice() -> bool:
        return all(len(runs.reading(b.staff_id, "reconcile", since)) >= 2 for b in (jane, omar))

    await eventually(repaired_twice, within=WITHIN)
    await eventually(lambda: runs.of(jane.staff_id, "webhook", since))
    assert jane.event_ids() == jane_ids, "the same events, none written again"
    assert omar.event_ids() == omar_ids
    assert (graph_writes(stack.graph, jane.box), graph_writes(stack.graph, omar.box)) == writes
    for banker in (jane, omar):
        for run in runs.reading(banker.staff_id, "reconcile", since):
            # Coconut's record and the service's agree: a listing, and no Graph request at all.
            assert runs.calls(run, "graph") == []
            assert {c["name"] for c in runs.calls(run, "coconut")} == {
                "GET /api/v2/users/{id}/appointments",
                "GET /api/v2/users/{id}/unavailabilities",
            }
        shown = detail(ops, banker.staff_id)
        assert datetime.fromisoformat(shown["repaired_at"]) > since
        assert (shown["repaired_created"], shown["repaired_updated"]) == (0, 0)
        assert shown["repaired_removed"] == 0


# ----- the scheduled repair ----------------------------------------------------------------------


async def test_lost_changes_cancellations_and_deletions_are_repaired_on_the_same_events(
    stack: LocalStack, bank: Bank, ops: OpsClient, host_log: Path
) -> None:
    jane = bank.hire("Jane", on_roster=False)
    coconut = record_model(stack)
    moved = book(coconut, [jane], SOON)
    cancelled = book(coconut, [jane], SOON + timedelta(days=1))
    deleted = book(coconut, [jane], SOON + timedelta(days=2))
    training = coconut.record_absence(
        staff=jane.ref,
        start=SOON + timedelta(days=3),
        end=SOON + timedelta(days=3, hours=2),
        title="Training",
    )
    dentist = coconut.record_absence(
        staff=jane.ref,
        start=SOON + timedelta(days=4),
        end=SOON + timedelta(days=4, hours=1),
        title="Dentist",
    )
    jane.join()
    await eventually(lambda: len(jane.events()) == 5, within=WITHIN)
    await listed(ops, jane)
    before = jane.event_ids()

    # Five changes whose webhooks never arrive.
    later = SOON + timedelta(hours=3)
    stack.coconut.update_appointment(item_id(moved), start=later, end=later + timedelta(hours=1))
    stack.coconut.cancel(item_id(cancelled))
    stack.coconut.delete_appointment(item_id(deleted))
    stack.coconut.change_absence(item_id(training), title="Team training")
    stack.coconut.delete_absence(item_id(dentist))

    def repaired() -> bool:
        events = jane.events()
        if set(events) != {key(moved), key(training)}:
            return False
        return (
            instant(events[key(moved)][0]["start"]) == later
            and events[key(training)][0]["subject"] == "Team training"
        )

    await eventually(repaired, within=WITHIN)
    assert jane.event_ids() == {k: before[k] for k in (key(moved), key(training))}
    # A cancellation is a newer revision (updated); a deletion is an item no longer listed.
    mended = {"created": 0, "updated": 3, "removed": 2}
    await eventually(lambda: repairs(host_log, jane.staff_id) == mended)


async def test_a_lost_reassignment_moves_the_event_to_the_new_staff_member(
    stack: LocalStack, bank: Bank, ops: OpsClient, host_log: Path
) -> None:
    jane, omar = bank.hire("Jane"), bank.hire("Omar")
    booked = book(record_model(stack), [jane], SOON)
    assert await deliver(stack, booked) == [202]
    await eventually(lambda: key(booked) in jane.events(), within=WITHIN)
    await listed(ops, omar)

    stack.coconut.reassign(item_id(booked), [omar.staff_id])

    await eventually(
        lambda: key(booked) in omar.events() and key(booked) not in jane.events(), within=WITHIN
    )
    assert len(omar.events()[key(booked)]) == 1
    # Omar's listing shows its newer revision; Jane's listing, if first, no longer shows it.
    await eventually(lambda: repairs(host_log, omar.staff_id)["updated"] == 1)
    assert repairs(host_log, jane.staff_id)["removed"] in (0, 1)


async def test_a_listing_behind_the_webhooks_changes_nothing_and_a_deletion_stays_final(
    stack: LocalStack, bank: Bank, runs: Runs
) -> None:
    jane = bank.hire("Jane")
    coconut = sender_model()
    moved = book(coconut, [jane], SOON)
    deleted = book(coconut, [jane], SOON + timedelta(days=1))
    assert await deliver(stack, moved, deleted) == [202, 202]  # in Coconut's record too
    await eventually(lambda: len(jane.events()) == 2, within=WITHIN)
    moved_id = jane.event_ids()[key(moved)]

    # Newer revisions than Coconut's listings show, as a listing read just before them would.
    later = SOON + timedelta(hours=2)
    rescheduled = coconut.reschedule(item_id(moved), later, later + timedelta(hours=1))
    assert await deliver_unrecorded(stack, rescheduled, coconut.delete(item_id(deleted))) == [
        202,
        202,
    ]

    def applied() -> bool:
        events = jane.events()
        return set(events) == {key(moved)} and instant(events[key(moved)][0]["start"]) == later

    await eventually(applied, within=WITHIN)
    since = datetime.now(UTC)
    await eventually(
        lambda: len(runs.reading(jane.staff_id, "reconcile", since)) >= 2, within=WITHIN
    )
    assert applied(), "the listing's older revisions lose, the deleted item stays deleted"
    assert jane.event_ids() == {key(moved): moved_id}
    for run in runs.of(jane.staff_id, "reconcile", since):
        assert runs.calls(run, "graph") == []


# ----- the listing race --------------------------------------------------------------------------


@pytest.fixture
def listing_race(stack: LocalStack) -> Iterator[None]:
    """Coconut pages its listings over live data (the emulator's opt-in fault)."""
    stack.coconut.configure_faults(FaultPlan(listing_race=True))
    yield
    stack.coconut.configure_faults(FaultPlan())
    stack.coconut.state.listings.clear()


def crowded(stack: LocalStack, bank: Bank) -> tuple[Banker, Coconut]:
    """A staff member whose listing has two pages: 100 cancelled appointments first."""
    jane = bank.hire("Jane", on_roster=False)
    coconut = record_model(stack)
    crowd(coconut, jane, datetime.now(UTC).replace(microsecond=0) + timedelta(days=2))
    return jane, coconut


async def test_an_item_a_webhook_moves_while_the_listing_is_read_is_not_taken_away(
    stack: LocalStack, bank: Bank, ops: OpsClient, runs: Runs, host_log: Path, listing_race: None
) -> None:
    jane, coconut = crowded(stack, bank)
    moving = book(coconut, [jane], SOON + timedelta(days=1))  # the listing's second page
    jane.join()
    await eventually(lambda: set(jane.events()) == {key(moving)}, within=WITHIN)
    await listed(ops, jane)
    [event_id] = jane.event_ids()[key(moving)]

    # Between the two pages a webhook moves it to before the first page's items: live paging
    # misses it (and shows the first page's last item twice).
    earlier = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    moved = threading.Event()

    def move_it() -> None:
        envelope = coconut.reschedule(item_id(moving), earlier, earlier + timedelta(hours=1))
        deliver_meanwhile(stack, envelope)
        moved.set()

    stack.coconut.between_pages(move_it)
    await eventually(moved.is_set, within=WITHIN)
    since = datetime.now(UTC)

    def in_place() -> bool:
        events = jane.events()
        return set(events) == {key(moving)} and instant(events[key(moving)][0]["start"]) == earlier

    await eventually(in_place, within=WITHIN)
    await eventually(
        lambda: len(runs.reading(jane.staff_id, "reconcile", since)) >= 2, within=WITHIN
    )
    assert jane.event_ids() == {key(moving): [event_id]}, "updated, never removed"
    assert repairs(host_log, jane.staff_id)["removed"] == 0


async def test_an_item_a_deletion_shifts_out_of_the_listing_stays(
    stack: LocalStack, bank: Bank, ops: OpsClient, runs: Runs, host_log: Path, listing_race: None
) -> None:
    jane, coconut = crowded(stack, bank)
    staying = book(coconut, [jane], SOON + timedelta(days=1))  # the listing's second page
    jane.join()
    await eventually(lambda: set(jane.events()) == {key(staying)}, within=WITHIN)
    await listed(ops, jane)
    [event_id] = jane.event_ids()[key(staying)]
    first_cancelled = stack.coconut.appointments(jane.staff_id)[0]["id"]
    deleted = threading.Event()

    def delete_one() -> None:
        # Between the two pages a webhook deletes an item of the first: live paging shifts the
        # second page's first item onto the first page, already read.
        deliver_meanwhile(stack, coconut.delete(first_cancelled))
        deleted.set()

    stack.coconut.between_pages(delete_one)
    await eventually(deleted.is_set, within=WITHIN)
    since = datetime.now(UTC)
    await eventually(
        lambda: len(runs.reading(jane.staff_id, "reconcile", since)) >= 2, within=WITHIN
    )
    assert jane.event_ids() == {key(staying): [event_id]}, "never removed, never made again"
    assert repairs(host_log, jane.staff_id) == {"created": 0, "updated": 0, "removed": 0}


async def test_the_ops_detail_shows_what_a_repair_mended_when_a_webhook_arrived_meanwhile(
    stack: LocalStack, bank: Bank, ops: OpsClient, host_log: Path, listing_race: None
) -> None:
    jane, coconut = crowded(stack, bank)
    booked = book(coconut, [jane], SOON)  # the listing's second page
    jane.join()
    await eventually(lambda: key(booked) in jane.events(), within=WITHIN)
    await listed(ops, jane)
    unsent = sender_model()  # Coconut's record gets these from inside the listing only
    lost = book(unsent, [jane], SOON + timedelta(days=1))
    sent = book(unsent, [jane], SOON + timedelta(days=2))
    repairing = threading.Event()

    def lose_one_and_send_one() -> None:
        # The listing under way (live paging) finds one lost booking on its second page while
        # a webhook about another asks for a pass of the same staff member; Coconut then
        # answers slowly enough for that request to find the run still going.
        stack.coconut.apply_envelope(lost)
        deliver_meanwhile(stack, sent)
        stack.coconut.configure_faults(FaultPlan(listing_race=True, latency_seconds=2.0))
        repairing.set()

    stack.coconut.between_pages(lose_one_and_send_one)
    await eventually(repairing.is_set, within=WITHIN)

    def repaired_in() -> str | None:
        for found in records(host_log, "lost webhooks repaired"):
            if found.get("staff_id") == jane.staff_id:
                return found["trace"]
        return None

    trace = await eventually(repaired_in, within=WITHIN)
    stack.coconut.configure_faults(FaultPlan(listing_race=True))
    # The run's last record, written once its outcome is: what the ops detail shows then.
    await eventually(
        lambda: any(r.get("trace") == trace for r in records(host_log, "staff sync synced")),
        within=WITHIN,
    )
    shown = detail(ops, jane.staff_id)
    assert {key(lost), key(sent)} <= set(jane.events())
    assert shown["repaired_created"] == 1, shown


# ----- Coconut failing, or not knowing the staff member ------------------------------------------


async def test_a_listing_coconut_fails_halfway_through_withdraws_nothing(
    stack: LocalStack, bank: Bank, ops: OpsClient, host_log: Path
) -> None:
    jane, coconut = crowded(stack, bank)
    kept = book(coconut, [jane], SOON + timedelta(days=1))  # the listing's second page
    away = coconut.record_absence(
        staff=jane.ref, start=SOON, end=SOON + timedelta(hours=3), title="Training"
    )
    gone = coconut.record_absence(
        staff=jane.ref,
        start=SOON + timedelta(days=1),
        end=SOON + timedelta(days=1, hours=3),
        title="Dentist",
    )
    jane.join()
    await eventually(lambda: len(jane.events()) == 3, within=WITHIN)
    await listed(ops, jane)
    before = jane.event_ids()

    failing = threading.Event()

    def fail() -> None:
        # The appointments' second page is served; from then on Coconut answers 503.
        stack.coconut.configure_faults(FaultPlan(server_error_rate=1.0))
        failing.set()

    stack.coconut.between_pages(fail)
    stack.coconut.delete_absence(item_id(gone))  # and its webhook is lost
    try:
        await eventually(failing.is_set, within=WITHIN)

        def deferred() -> bool:
            return any(
                "Coconut answered 503" in line and jane.staff_id in line
                for line in lines(host_log, "staff sync deferred")
            )

        await eventually(deferred, within=WITHIN)
        # The absences were never listed: not one of them is taken for gone.
        assert jane.event_ids() == before
    finally:
        stack.coconut.configure_faults(FaultPlan())
    assert jane.event_ids() == before
    # The run waits 30 s before it tries again (Coconut said nothing about when); an
    # administrator need not.
    await command(ops, jane.staff_id, "resync")

    await eventually(lambda: set(jane.events()) == {key(kept), key(away)}, within=WITHIN)
    assert jane.event_ids() == {k: before[k] for k in (key(kept), key(away))}
    assert detail(ops, jane.staff_id)["status"] == "Syncing"


async def test_coconut_throttling_a_listing_only_delays_the_repair(
    stack: LocalStack, bank: Bank, ops: OpsClient, host_log: Path
) -> None:
    jane = bank.hire("Jane", on_roster=False)
    coconut = record_model(stack)
    kept = book(coconut, [jane], SOON)
    gone = book(coconut, [jane], SOON + timedelta(days=1))
    jane.join()
    await eventually(lambda: len(jane.events()) == 2, within=WITHIN)
    await listed(ops, jane)
    before = jane.event_ids()
    throttled = stack.coconut.requests("GET", APPOINTMENTS_ROUTE, 429)

    stack.coconut.configure_faults(FaultPlan(throttle_rate=1.0, retry_after_seconds=1))
    try:
        stack.coconut.delete_appointment(item_id(gone))  # and its webhook is lost
        await eventually(
            lambda: stack.coconut.requests("GET", APPOINTMENTS_ROUTE, 429) > throttled,
            within=WITHIN,
        )
        await asyncio.sleep(1.5)  # Coconut keeps throttling for a while
        assert jane.event_ids() == before
    finally:
        stack.coconut.configure_faults(FaultPlan())

    await eventually(lambda: set(jane.events()) == {key(kept)}, within=WITHIN)
    assert jane.event_ids() == {key(kept): before[key(kept)]}
    await eventually(lambda: repairs(host_log, jane.staff_id)["removed"] == 1)
    assert detail(ops, jane.staff_id)["status"] == "Syncing"


async def test_a_staff_member_coconut_does_not_list_keeps_what_webhooks_brought(
    stack: LocalStack, bank: Bank, ops: OpsClient, runs: Runs
) -> None:
    sam = bank.hire("Sam", on_roster=False)  # never on the roster: his listings answer 404
    booked = book(sender_model(), [sam], SOON)
    assert await deliver(stack, booked) == [202]
    await eventually(lambda: key(booked) in sam.events(), within=WITHIN)
    # (Coconut's busy time cannot be written for him either: the import says so in his status.)
    await eventually(lambda: detail(ops, sam.staff_id).get("listed_at"), within=WITHIN)
    before = sam.event_ids()
    since = datetime.now(UTC)

    await eventually(
        lambda: len(runs.reading(sam.staff_id, "reconcile", since)) >= 2, within=WITHIN
    )
    assert sam.event_ids() == before, "nothing listed is not everything gone"
    for run in runs.reading(sam.staff_id, "reconcile", since):
        assert runs.calls(run, "graph") == []
        answered = {
            c["attributes"]["http.response.status_code"] for c in runs.calls(run, "coconut")
        }
        assert answered == {404}


# ----- first syncs other than a new staff member -------------------------------------------------


async def test_calendar_sync_turned_back_on_brings_what_was_booked_meanwhile(
    stack: LocalStack, bank: Bank, ops: OpsClient, runs: Runs, host_log: Path
) -> None:
    jane = bank.hire("Jane")
    await listed(ops, jane)
    stack.coconut.set_calendar_sync(jane.staff_id, False)
    await eventually(lambda: detail(ops, jane.staff_id)["status"] == "Disabled", within=WITHIN)

    meanwhile = stack.coconut.book(
        staff=[jane.staff_id], start=SOON, end=SOON + timedelta(hours=1), service=VIDEO_SERVICE
    )
    since = datetime.now(UTC)
    stack.coconut.set_calendar_sync(jane.staff_id, True)

    await eventually(lambda: key(meanwhile) in jane.events(), within=WITHIN)
    [writer] = await eventually(
        lambda: [r for r in runs.of(jane.staff_id, since=since) if runs.writes(r)]
    )
    # Read on the roster's word by the timer's run, or by the scheduled repair's when its
    # request (every 4 s here too) reaches the staff member first: both read the listing.
    assert writer["attributes"]["trigger"] in ("timer", "reconcile"), "a periodic run read it"
    assert repairs(host_log, jane.staff_id)["created"] == 0, "a first sync, not a repair"


async def test_a_reconnect_brings_back_what_coconut_lists(
    stack: LocalStack, bank: Bank, ops: OpsClient
) -> None:
    jane = bank.hire("Jane")
    booked = book(sender_model(), [jane], SOON)
    assert await deliver(stack, booked) == [202]
    await eventually(lambda: key(booked) in jane.events(), within=WITHIN)
    await command(ops, jane.staff_id, "disconnect")
    await eventually(
        lambda: detail(ops, jane.staff_id)["status"] == "Disconnected" and not jane.events(),
        within=WITHIN,
    )
    meanwhile = stack.coconut.book(
        staff=[jane.staff_id],
        start=SOON + timedelta(days=1),
        end=SOON + timedelta(days=1, hours=1),
        service=VIDEO_SERVICE,
    )

    await command(ops, jane.staff_id, "reconnect")

    # No webhook again: Coconut's listing alone brings both back.
    await eventually(lambda: set(jane.events()) == {key(booked), key(meanwhile)}, within=WITHIN)
    assert all(len(ids) == 1 for ids in jane.event_ids().values())


async def test_an_ops_resync_reads_the_listings_at_once(
    stack: LocalStack, bank: Bank, ops: OpsClient, runs: Runs
) -> None:
    jane = bank.hire("Jane")
    await listed(ops, jane)
    lost = stack.coconut.book(
        staff=[jane.staff_id], start=SOON, end=SOON + timedelta(hours=1), service=VIDEO_SERVICE
    )
    since = datetime.now(UTC)

    await command(ops, jane.staff_id, "resync")

    await eventually(lambda: key(lost) in jane.events(), within=WITHIN)
    [resync, *_] = await eventually(
        lambda: runs.reading(jane.staff_id, "ops", since), within=WITHIN
    )
    read = {c["name"] for c in runs.calls(resync, "coconut")}
    assert "GET /api/v2/users/{id}/appointments" in read
    assert "GET /api/v2/users/{id}/unavailabilities" in read
