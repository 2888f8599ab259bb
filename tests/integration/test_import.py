"""Import on the local stack: a staff member's own Outlook busy time becomes "Busy" blocks in
Coconut. Changes are made as a person would in Outlook (the Graph emulator's control API) and the
outcome is read back from the Coconut emulator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from local.coconut_emulator.webhooks import payloads
from local.stack import LocalStack
from sync.imports.busy_time import external_id_for
from tests.integration.conftest import deliver, eventually, synced_events
from tests.integration.test_export import BRANCH, OPENING, new_coconut

pytestmark = pytest.mark.integration

SOON = (datetime.now(UTC) + timedelta(days=7)).replace(hour=15, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose timer runs every 2 s: Outlook changes arrive without notifications."""
    log = tmp_path_factory.mktemp("host") / "host.log"
    with LocalStack(timer_schedule="*/2 * * * * *", host_log=log) as running:
        yield running


class Person:
    """A staff member on Coconut's roster with a Microsoft 365 mailbox."""

    def __init__(self, stack: LocalStack, time_zone: str = "Eastern Standard Time") -> None:
        tag = uuid.uuid4().hex[:8]
        self.staff_id = f"U-{tag}"
        self.email = f"pat.{tag}@bank.example"
        self.stack = stack
        self.mailbox = stack.graph.add_user(
            f"pat.{tag}@bank.onmicrosoft.com", mail=self.email, time_zone=time_zone
        ).id
        stack.coconut.add_user(self.staff_id, self.email, "Pat", tag, calendar_sync=True)

    def add(self, subject: str, start: datetime, hours: float = 1, **extra: Any) -> str:
        body = {
            "subject": subject,
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            **extra,
        }
        return self.stack.graph.create_event_as_person(self.mailbox, body).id

    def busy(self) -> dict[str, dict[str, Any]]:
        return self.stack.coconut.external_events(self.staff_id)

    def spans(self) -> list[tuple[str, str, str]]:
        return sorted(
            (a["attributes"]["start"], a["attributes"]["end"], a["attributes"]["show_as"])
            for a in self.busy().values()
        )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def pat(stack: LocalStack) -> Person:
    return Person(stack)


async def test_busy_tentative_and_oof_events_become_busy_blocks_with_nothing_else(
    pat: Person,
) -> None:
    pat.add("Dentist Zyxwv", SOON, showAs="busy", body={"contentType": "text", "content": "x"})
    pat.add("Maybe lunch", SOON + timedelta(days=1), showAs="tentative")
    pat.add("Conference", SOON + timedelta(days=2), showAs="oof")
    pat.add("Free time", SOON + timedelta(days=3), showAs="free")
    pat.add("Remote", SOON + timedelta(days=4), showAs="workingElsewhere")
    pat.add("Zero length", SOON + timedelta(days=5), hours=0)
    pat.add("Long ago", datetime.now(UTC) - timedelta(days=30))

    await eventually(lambda: len(pat.busy()) == 3)
    assert pat.spans() == [
        (iso(SOON), iso(SOON + timedelta(hours=1)), "busy"),
        (iso(SOON + timedelta(days=1)), iso(SOON + timedelta(days=1, hours=1)), "tentative"),
        (iso(SOON + timedelta(days=2)), iso(SOON + timedelta(days=2, hours=1)), "oof"),
    ]
    for block in pat.busy().values():
        assert block["attributes"]["title"] == "Busy"
        assert set(block["attributes"]) == {"title", "start", "end", "all_day", "show_as"}
        assert "Zyxwv" not in str(block)


async def test_changes_deletions_and_busy_to_free_follow(pat: Person) -> None:
    moved = pat.add("Physio", SOON)
    freed = pat.add("Gym", SOON + timedelta(days=1))
    gone = pat.add("Dinner", SOON + timedelta(days=2))
    await eventually(lambda: len(pat.busy()) == 3)

    later = SOON + timedelta(hours=3)
    pat.stack.graph.update_event_as_person(
        pat.mailbox,
        moved,
        {
            "start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    pat.stack.graph.update_event_as_person(pat.mailbox, freed, {"showAs": "free"})
    pat.stack.graph.delete_event_as_person(pat.mailbox, gone)

    expected = [(iso(later), iso(later + timedelta(hours=1)), "busy")]
    await eventually(lambda: pat.spans() == expected)


async def test_each_occurrence_of_a_recurring_series_counts_with_exceptions_and_cancellations(
    pat: Person,
) -> None:
    first = SOON.replace(hour=13)
    series = pat.add(
        "Weekly standup",
        first,
        hours=0.5,
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "numbered",
                "startDate": first.strftime("%Y-%m-%d"),
                "numberOfOccurrences": 4,
                "recurrenceTimeZone": "UTC",
            },
        },
    )
    await eventually(lambda: len(pat.busy()) == 4)

    view = httpx.get(  # noqa: ASYNC210 - the emulator's control API, not the code under test
        f"{pat.stack.graph.control_url}/users/{pat.mailbox}/calendar-view",
        params={"start": iso(first - timedelta(days=1)), "end": iso(first + timedelta(days=5))},
    ).json()
    occurrences = sorted(
        (e for e in view["value"] if e.get("seriesMasterId") == series),
        key=lambda e: e["start"]["dateTime"],
    )
    assert len(occurrences) == 4
    # A person moves the second occurrence an hour later and cancels the third.
    moved_start = first + timedelta(days=1, hours=1)
    pat.stack.graph.update_event_as_person(
        pat.mailbox,
        occurrences[1]["id"],
        {
            "start": {"dateTime": moved_start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (moved_start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    pat.stack.graph.delete_event_as_person(pat.mailbox, occurrences[2]["id"])

    def day(n: int, hour: int = 13) -> tuple[str, str, str]:
        start = first.replace(hour=hour) + timedelta(days=n)
        return (iso(start), iso(start + timedelta(minutes=30)), "busy")

    await eventually(lambda: pat.spans() == [day(0), day(1, 14), day(3)])


async def test_the_services_own_events_are_never_imported(stack: LocalStack, pat: Person) -> None:
    coconut = new_coconut()
    staff = payloads.staff_member(pat.staff_id, pat.email, "Pat", "Lee")
    await deliver(
        stack,
        coconut.book(
            staff=[staff],
            start=SOON,
            end=SOON + timedelta(hours=1),
            service=OPENING,
            location=BRANCH,
        ),
    )
    [appointment] = await eventually(lambda: synced_events(stack.graph, pat.mailbox))
    own = [pat.add("Own appointment", SOON + timedelta(days=1))]
    await eventually(lambda: set(pat.busy()) == {external_id_for(own[0])})
    # More import rounds (each proven by one more own event arriving): still only the person's
    # own events, never the appointment.
    for day in (2, 3):
        own.append(pat.add("Own appointment", SOON + timedelta(days=day)))
        await eventually(lambda: len(pat.busy()) == len(own))
        assert set(pat.busy()) == {external_id_for(event_id) for event_id in own}
        assert external_id_for(appointment["id"]) not in pat.busy()


async def test_an_invalidated_delta_token_resyncs_without_duplicates_or_losses(
    stack: LocalStack, pat: Person
) -> None:
    keep = pat.add("Keep", SOON)
    drop = pat.add("Drop", SOON + timedelta(days=1))
    await eventually(lambda: len(pat.busy()) == 2)
    held_before = set(pat.busy())

    invalidate = f"{stack.graph.control_url}/users/{pat.mailbox}/delta-tokens/invalidate"
    httpx.post(invalidate)  # noqa: ASYNC210 - the emulator's control API
    pat.stack.graph.delete_event_as_person(pat.mailbox, drop)
    pat.add("New", SOON + timedelta(days=2))

    await eventually(lambda: len(pat.busy()) == 2 and set(pat.busy()) != held_before)
    assert pat.spans() == [
        (iso(SOON), iso(SOON + timedelta(hours=1)), "busy"),
        (iso(SOON + timedelta(days=2)), iso(SOON + timedelta(days=2, hours=1)), "busy"),
    ]
    # The kept event's block survived the resync under the same external id; the dropped
    # one's went.
    assert held_before & set(pat.busy()) == {external_id_for(keep)}
    assert external_id_for(drop) not in pat.busy()


async def test_staff_with_calendar_sync_off_are_not_imported(stack: LocalStack) -> None:
    off = Person(stack)
    stack.coconut.add_user(off.staff_id, off.email, "Pat", "Off", calendar_sync=False)
    off.add("Private", SOON)
    on = Person(stack)
    on.add("Visible", SOON)
    await eventually(lambda: len(on.busy()) == 1)
    assert off.busy() == {}


def test_notifications_bring_outlook_changes_in_without_waiting_for_the_timer(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    log = tmp_path_factory.mktemp("notify") / "host.log"
    # The timer is hourly here: only a change notification can make the block appear in time.
    with LocalStack(timer_schedule="0 0 * * * *", notifications=True, host_log=log) as stack:
        person = Person(stack)
        coconut = new_coconut()
        staff = payloads.staff_member(person.staff_id, person.email, "Pat", "Lee")
        # A first sync (from a booking) creates the mailbox's subscription.
        asyncio.run(
            deliver(
                stack,
                coconut.book(
                    staff=[staff],
                    start=SOON,
                    end=SOON + timedelta(hours=1),
                    service=OPENING,
                    location=BRANCH,
                ),
            )
        )
        asyncio.run(eventually(lambda: synced_events(stack.graph, person.mailbox)))

        def subscribed() -> bool:
            found = httpx.get(f"{stack.graph.control_url}/subscriptions").json()["value"]
            return any(person.mailbox in s["resource"] for s in found)

        asyncio.run(eventually(subscribed, within=10))

        person.add("Doctor", SOON + timedelta(days=1))
        asyncio.run(eventually(lambda: len(person.busy()) == 1, within=10))
