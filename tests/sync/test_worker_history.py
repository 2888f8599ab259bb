"""A staff member's history: what a pass does with items that ended long ago.

A pass reads the rows waiting for it and, for a full pass or a full import round, the items
whose content is still kept (`SYNC_CONTENT_RETENTION_DAYS`): never the whole history. Older
items are history. Their events are still the service's own (never imported back as the staff
member's busy time, looked up by event id when a round lists one) and Coconut's listings never
reach back to them (their content was purged and must not come back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.coconut.webhook_models import AppointmentChange
from sync.memory.calendar import MemoryEvent
from sync.memory.world import MemoryWorld
from sync.ports import MailboxUser
from sync.staff_record import ImportCursor, Roster, StaffChanges
from sync.work import StaffSyncRequest
from sync.worker import StaffWorker
from tests.sync.payloads import appointment_at

STAFF = "U-42"
MAIL = "u-42@bank.example"
NOW = datetime.now(UTC)


def ended_days_ago(days: int, coconut_id: str, revision: int = 1) -> AppointmentChange:
    """An appointment of half an hour that ended `days` days ago."""
    delivery = appointment_at(revision, coconut_id=coconut_id)
    end = NOW.replace(microsecond=0) - timedelta(days=days)
    moved = {"start": end - timedelta(minutes=30), "end": end}
    return delivery.model_copy(
        update={"appointment": delivery.appointment.model_copy(update=moved)}
    )


def request(reason: str) -> StaffSyncRequest:
    return StaffSyncRequest.model_validate({"staff_id": STAFF, "reason": reason})


async def connected_long_ago(world: MemoryWorld, days: int) -> MailboxUser:
    """A staff member whose calendar was initialised `days` days ago."""
    world.coconut.add_user(STAFF, MAIL)
    user = world.calendar.add_user(MAIL, "UTC")
    since = ImportCursor(initialised_at=NOW - timedelta(days=days))
    await world.staff.create(STAFF, StaffChanges(roster=Roster(email=MAIL), cursor=since))
    return user


async def old_event_written(
    world: MemoryWorld, ended_days: int
) -> tuple[MailboxUser, StaffWorker, MemoryEvent]:
    """A staff member connected 90 days ago with an appointment that ended `ended_days` days
    ago, its event written by a webhook's run."""
    user = await connected_long_ago(world, days=90)
    old = ended_days_ago(ended_days, "A-OLD")
    world.coconut.apply(old)
    await world.items.record(old)
    worker = world.worker()
    await worker.run(request("webhook"))
    [event] = world.calendar.live_events(user.id)
    return user, worker, event


async def test_an_old_appointments_event_is_never_imported_as_busy_time() -> None:
    world = MemoryWorld()  # content kept 30 days
    user, worker, event = await old_event_written(world, ended_days=60)

    # The first import round lists the whole window, this event included; then a person
    # edits it, and the next round lists it again.
    await worker.run(request("timer"))
    world.calendar.person_edit(user.id, event.id, {"subject": "Edited by me"})
    await worker.run(request("timer"))

    assert world.coconut.blocks[STAFF] == {}, "the service's own event is not the staff's time"
    assert [e.coconut_key for e in world.calendar.live_events(user.id)] == ["appointment:A-OLD"]


async def test_a_persons_own_event_from_the_same_days_is_imported() -> None:
    world = MemoryWorld()
    user = await connected_long_ago(world, days=90)
    end = NOW - timedelta(days=60)
    world.calendar.person_create(
        user.id,
        {
            "subject": "Dentist",
            "showAs": "busy",
            "start": {
                "dateTime": f"{end - timedelta(hours=1):%Y-%m-%dT%H:%M:%S}",
                "timeZone": "UTC",
            },
            "end": {"dateTime": f"{end:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
        },
    )

    await world.worker().run(request("timer"))

    assert len(world.coconut.blocks[STAFF]) == 1


async def test_onboarding_never_reads_coconut_further_back_than_the_content_is_kept() -> None:
    world = MemoryWorld()  # content kept 30 days
    await connected_long_ago(world, days=90)
    # In Coconut's record, never delivered: one that ended 60 days ago, one 10 days ago.
    for delivery in (ended_days_ago(60, "A-OLD"), ended_days_ago(10, "A-RECENT")):
        world.coconut.apply(delivery)

    await world.worker().run(request("timer"))

    held = await world.items.load(["appointment:A-OLD", "appointment:A-RECENT"])
    assert held["appointment:A-OLD"] is None, "purged content is not brought back"
    assert held["appointment:A-RECENT"] is not None


async def test_a_person_deleting_an_old_appointments_event_is_left_alone() -> None:
    """Tidying up one's history in Outlook: the service does not put the event back."""
    world = MemoryWorld()  # content kept 30 days
    user, worker, event = await old_event_written(world, ended_days=40)
    await worker.run(request("timer"))  # the first round lists it
    requests = world.calendar.requests

    world.calendar.person_delete(user.id, event.id)
    report = await worker.run(request("notification"))

    assert report.outcome == "synced"
    assert world.calendar.live_events(user.id) == []
    assert world.calendar.requests - requests == 1, "the delta round only"
    assert world.coconut.blocks[STAFF] == {}
