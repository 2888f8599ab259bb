"""The staff worker's decisions, one run at a time over `MemoryWorld`: what a first pass records,
the statuses it ends in, and what it does while another worker holds the mailbox or Graph
throttles it. (Random interleavings of all of this are the state machine's:
`tests/sync/test_worker_machine.py`.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from sync.coconut.webhook_models import Delivery
from sync.desired_items import MARK_TO_COMMIT
from sync.desired_state import DesiredItem, decide
from sync.graph.calls import PACED
from sync.graph.errors import GraphRetryable
from sync.imports.busy_time import external_id_for
from sync.lease import StaffLease
from sync.memory.faults import Crash
from sync.memory.world import MemoryWorld
from sync.ports import MailboxUser, StaffItemRow
from sync.staff_record import Connection, Roster, StaffChanges, StaffRecord
from sync.work import StaffSyncRequest
from sync.worker import SPECIAL_RETRY_SECONDS, RunReport, StaffWorker, _back_off
from tests.sync.payloads import appointment_at, tomorrow

STAFF = "U-42"
MAIL = "u-42@bank.example"  # the e-mail `tests.sync.payloads` gives U-42


class Service:
    def __init__(self) -> None:
        self.world = MemoryWorld()
        self.worker: StaffWorker = self.world.worker()

    def mailbox(
        self, staff_id: str = STAFF, mail: str = MAIL, zone: str = "Eastern Standard Time"
    ) -> MailboxUser:
        """The staff member in Coconut and in Microsoft 365."""
        self.world.coconut.add_user(staff_id, mail)
        return self.world.calendar.add_user(mail, zone)

    async def deliver(self, delivery: Delivery) -> None:
        """Coconut changes its record and sends the webhook; the endpoint records it."""
        self.world.coconut.apply(delivery)
        result = await self.world.items.record(delivery)
        await self.world.queue.request_sync(result.staff_ids, "webhook")

    async def run(self, request: StaffSyncRequest | None = None) -> RunReport:
        """The given request, or the first one queued (its delay passed)."""
        if request is None:
            queued = self.world.queue.messages[0]
            self.world.advance(queued.delay_seconds)
            request = self.world.queue.take_request()
        return await self.worker.run(request)

    async def record(self, staff_id: str = STAFF) -> StaffRecord:
        found = await self.world.staff.get(staff_id)
        assert found is not None
        return found

    async def pending(self, staff_id: str = STAFF) -> list[str]:
        return sorted(r.item_key for r in await self.world.links.rows(staff_id) if r.pending)

    def events(self, user: MailboxUser) -> list[str | None]:
        return [e.coconut_key for e in self.world.calendar.live_events(user.id)]


class RowsRead:
    """The item keys of the staff rows every query returns."""

    def __init__(self, service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
        self.item_keys: list[str] = []
        links = service.world.links
        for name in ("rows", "current", "pending", "with_events", "since_round", "failing"):
            monkeypatch.setattr(links, name, self._counted(getattr(links, name)))

    def _counted(
        self, query: Callable[..., Awaitable[list[StaffItemRow]]]
    ) -> Callable[..., Awaitable[list[StaffItemRow]]]:
        async def counted(*args: object, **kwargs: object) -> list[StaffItemRow]:
            rows = await query(*args, **kwargs)
            self.item_keys += [row.item_key for row in rows]
            return rows

        return counted


def sync(reason: str = "webhook", *, full: bool = False) -> StaffSyncRequest:
    return StaffSyncRequest.model_validate({"staff_id": STAFF, "reason": reason, "full": full})


async def test_a_first_pass_writes_the_event_and_records_what_it_learned() -> None:
    service = Service()
    user = service.mailbox()
    await service.deliver(appointment_at(1, starts=tomorrow()))

    report = await service.run()

    assert report.outcome == "synced"
    assert report.export is not None
    assert report.export.created == 1
    assert service.events(user) == ["appointment:A-1001"]
    record = await service.record()
    assert record.roster.email == MAIL, "learned from the item"
    assert (record.mailbox.user_id, record.mailbox.time_zone) == (user.id, user.time_zone)
    assert record.mailbox.resolved_at is not None
    assert (record.outcome.status, record.outcome.event_count) == ("Syncing", 1)
    assert record.outcome.last_sync_at is not None
    assert record.cursor.delta_link != "", "the import's first round is kept"
    assert record.lease.owner == "", "the lease is given back"
    assert await service.pending() == []
    assert service.world.queue.messages == []


async def test_the_mailbox_found_is_trusted_on_the_next_pass() -> None:
    service = Service()
    service.mailbox()
    await service.deliver(appointment_at(1))
    await service.run()
    lookups = service.world.calendar.requests

    await service.deliver(appointment_at(2, notes="changed"))
    await service.run()

    # The update alone: no second user lookup, and a webhook's pass does not read Outlook.
    assert service.world.calendar.requests - lookups == 1


async def test_without_an_e_mail_the_staff_member_waits_with_a_warning() -> None:
    service = Service()
    await service.world.links.mark_pending([STAFF], "appointment:A-1001")  # no item recorded

    report = await service.run(sync())

    assert report.outcome == "warning"
    record = await service.record()
    assert (record.outcome.status, record.outcome.reason) == (
        "Warning",
        "no e-mail address known for this staff member yet",
    )
    assert service.world.calendar.requests == 0
    assert await service.pending() == ["appointment:A-1001"], "the work waits"


async def test_without_a_microsoft_365_user_the_staff_member_waits_with_a_warning() -> None:
    service = Service()
    await service.deliver(appointment_at(1))

    report = await service.run()

    assert report.outcome == "warning"
    record = await service.record()
    assert record.outcome.status == "Warning"
    assert "no Microsoft 365 user" in record.outcome.reason
    assert (record.mailbox.email, record.mailbox.user_id) == (MAIL, "")
    assert record.roster.email == MAIL
    assert await service.pending() == ["appointment:A-1001"]


async def test_with_calendar_sync_off_nothing_is_written() -> None:
    service = Service()
    user = service.mailbox()
    await service.world.staff.merge(STAFF, StaffChanges(roster=Roster(calendar_sync=False)))
    await service.deliver(appointment_at(1))

    report = await service.run()

    assert report.outcome == "disabled"
    assert (await service.record()).outcome.status == "Disabled"
    assert service.events(user) == []
    assert service.world.calendar.requests == 0


async def test_a_disconnected_staff_member_is_not_synced() -> None:
    service = Service()
    user = service.mailbox()
    await service.world.staff.merge(STAFF, StaffChanges(connection=Connection(disconnected=True)))
    await service.deliver(appointment_at(1))

    report = await service.run()

    assert report.outcome == "disconnected"
    assert service.events(user) == []


async def test_a_request_while_another_worker_holds_the_mailbox_asks_it_for_one_more_pass() -> None:
    service = Service()
    service.mailbox()
    other = StaffLease(service.world.staff, timedelta(seconds=60), owner="other-process")
    held = await other.acquire(STAFF)
    until = held.record.lease.until
    assert until is not None

    first = await service.run(sync())
    second = await service.run(sync())

    assert (first.outcome, second.outcome) == ("deferred", "deferred")
    record = await service.record()
    assert record.rerun.requested is True
    assert record.rerun.wakeup_at is not None
    assert record.rerun.wakeup_at - until == timedelta(seconds=1)
    [wakeup] = service.world.queue.messages  # one wake-up, however many requests
    assert wakeup.request.attempt == 1
    assert 59 <= wakeup.delay_seconds <= 61
    assert record.lease.owner == held.owner


async def test_a_full_request_while_the_mailbox_is_held_tries_again_shortly() -> None:
    service = Service()
    other = StaffLease(service.world.staff, timedelta(seconds=60), owner="other-process")
    await other.acquire(STAFF)

    report = await service.run(sync("ops", full=True))

    assert report.outcome == "deferred"
    [retry] = service.world.queue.messages
    assert (retry.request.full, retry.request.attempt) == (True, 1)
    assert retry.delay_seconds == SPECIAL_RETRY_SECONDS
    assert (await service.record()).rerun.requested is False


async def test_while_graph_throttles_the_mailbox_one_retry_waits_and_plain_requests_drop() -> None:
    service = Service()
    user = service.mailbox()
    await service.deliver(appointment_at(1))
    service.world.calendar.throttle_next(1, retry_after=30)

    report = await service.run()

    assert report.outcome == "deferred"
    [retry] = service.world.queue.messages
    assert (retry.request.attempt, retry.delay_seconds) == (1, 30)
    record = await service.record()
    assert record.outcome.throttled_until is not None
    left = record.outcome.throttled_until - datetime.now(UTC)
    assert timedelta(seconds=28) < left <= timedelta(seconds=30)
    assert record.lease.owner == ""
    requests = service.world.calendar.requests

    assert (await service.run(sync("notification"))).outcome == "deferred"
    assert service.world.calendar.requests == requests, "dropped without asking Graph"
    assert len(service.world.queue.messages) == 1

    assert (await service.run()).outcome == "synced", "the retry, once the wait is over"
    assert service.events(user) == ["appointment:A-1001"]


async def test_an_item_reassigned_away_after_a_throttled_first_pass_leaves_the_calendar() -> None:
    service = Service()
    user = service.mailbox()
    service.mailbox("U-7", "u-7@bank.example")
    await service.deliver(appointment_at(1))
    service.world.calendar.lose_next_answers(1)  # the create happened, its answer was lost
    assert (await service.run()).outcome == "deferred"

    await service.deliver(appointment_at(2, ("U-7",)))  # reassigned to U-7
    while service.world.queue.messages:
        await service.run()

    assert service.events(user) == [], "the appointment left U-42's calendar"
    assert (await service.record()).outcome.status == "Syncing"


async def test_the_event_count_stays_true_after_a_run_gave_up_having_written() -> None:
    """A run that gave up may have made an event it never counted; removing that event later
    must not take one off the count: the next pass counts the links, and the quiet cycles
    after it keep that count."""
    service = Service()
    user = service.mailbox()
    await service.deliver(appointment_at(1, starts=tomorrow()))
    await service.run()
    await service.deliver(appointment_at(1, coconut_id="A-1002", starts=tomorrow()))
    service.world.calendar.lose_next_answers(1)  # made, its answer lost: the run gives up
    assert (await service.run()).outcome == "deferred"
    assert (await service.record()).outcome.count_unsure

    await service.deliver(appointment_at(2, coconut_id="A-1002", status="cancelled"))
    while service.world.queue.messages:
        await service.run()
    await service.run(sync("timer"))

    assert service.events(user) == ["appointment:A-1001"]
    record = await service.record()
    assert (record.outcome.event_count, record.outcome.count_unsure) == (1, False)


async def _marked_not_committed(service: Service) -> tuple[MailboxUser, str, DesiredItem]:
    """A known staff member, and a first delivery of A-1002 between its mark and its commit:
    the intake marked the row; the item's record is what it is about to insert."""
    user = service.mailbox()
    await service.deliver(appointment_at(1, starts=tomorrow()))  # the mailbox is known
    await service.run()
    delivery = appointment_at(1, coconut_id="A-1002", starts=tomorrow())
    decision = decide(None, delivery)
    assert decision.record is not None
    record = decision.record.model_copy(update={"recorded_at": datetime.now(UTC)})
    await service.world.links.mark_pending([STAFF], record.key, ends=record.ends_at)
    return user, record.key, record


async def test_a_run_between_a_first_deliverys_mark_and_its_commit_leaves_the_mark() -> None:
    """The intake marks a new item's rows once, before its commit: a run that reads the row
    before the record exists must not clear it, or the commit's own run finds nothing to do."""
    service = Service()
    user, key, record = await _marked_not_committed(service)

    assert (await service.run(sync("notification"))).outcome == "synced"
    assert await service.pending() == [key], "the mark waits for its commit"

    assert await service.world.table.swap(record, None)  # the commit: no mark after it
    await service.world.queue.request_sync([STAFF], "webhook")
    assert (await service.run()).outcome == "synced"
    assert sorted(filter(None, service.events(user))) == ["appointment:A-1001", key]
    assert await service.pending() == []


async def test_a_mark_whose_commit_never_came_is_cleared_once_no_invocation_can_commit() -> None:
    service = Service()
    user, _, _ = await _marked_not_committed(service)

    service.world.advance(MARK_TO_COMMIT.total_seconds() + 1)  # the intake died meanwhile
    assert (await service.run(sync("timer"))).outcome == "synced"

    assert await service.pending() == []
    assert sorted(filter(None, service.events(user))) == ["appointment:A-1001"]


@pytest.mark.parametrize("gone", ["deleted", "moved to another calendar"])
async def test_an_event_a_person_removes_before_any_round_saw_it_is_made_again(gone: str) -> None:
    """Delta only speaks of what a round handed out: an event written after one round and
    removed before the next is in neither, so the import must look at what it wrote since."""
    service = Service()
    user = service.mailbox()
    await service.deliver(appointment_at(1, starts=tomorrow()))
    await service.run()  # the first pass: the event, and a delta round
    await service.deliver(appointment_at(1, coconut_id="A-1002", starts=tomorrow()))
    await service.run()  # a webhook's pass writes the calendar only
    [written] = [
        e.id
        for e in service.world.calendar.live_events(user.id)
        if e.coconut_key == "appointment:A-1002"
    ]

    if gone == "deleted":
        service.world.calendar.person_delete(user.id, written)
    else:
        service.world.calendar.person_move(user.id, written)
    report = await service.run(sync("notification"))

    assert report.outcome == "synced"
    assert sorted(filter(None, service.events(user))) == [
        "appointment:A-1001",
        "appointment:A-1002",
    ]


async def test_a_person_deleting_an_event_graph_keeps_failing_on_holds_back_nothing() -> None:
    service = Service()
    user = service.mailbox()
    await service.deliver(appointment_at(1))
    await service.run()  # the event, and a first delta round
    [failing] = service.world.calendar.live_events(user.id)
    await service.run(sync("notification"))  # a round that hands the event out
    service.world.calendar.fail_item("appointment:A-1001")

    service.world.calendar.person_delete(user.id, failing.id)
    own = service.world.calendar.person_create(user.id, dentist())
    report = await service.run(sync("notification"))

    assert report.outcome == "synced"
    assert external_id_for(own) in service.world.coconut.blocks.get(STAFF, {})


@pytest.mark.parametrize("failure", ["lost answer", "crash"])
async def test_busy_time_a_failed_pass_brought_in_leaves_with_its_event(failure: str) -> None:
    """A pass brings a new own event into Coconut, then fails while it puts back a service event
    a person edited (Graph's answer lost, or the process dies): its delta link is not stored.
    The person deletes the event before the next pass. The round from the old link cannot say
    so (made and gone since that link), yet Coconut must not keep the block (chaos seed 1)."""
    service = Service()
    user = service.mailbox()
    await service.deliver(appointment_at(1, starts=tomorrow()))
    await service.run()  # the event, and a first delta round
    [ours] = service.world.calendar.live_events(user.id)
    own = service.world.calendar.person_create(user.id, dentist())
    service.world.calendar.person_edit(user.id, ours.id, {"subject": "Edited by me"})

    if failure == "crash":
        service.world.faults.crash_after_writes = 1  # the write putting the event back
        with pytest.raises(Crash):
            await service.run(sync("notification"))
        service.world.faults.restart()
    else:
        service.world.calendar.lose_next_answers(1)
        assert (await service.run(sync("notification"))).outcome == "deferred"
    assert external_id_for(own) in service.world.coconut.blocks[STAFF], "the import ran"
    assert (await service.record()).cursor.unconfirmed_writes, "marked before the PUT"
    service.world.calendar.person_delete(user.id, own)
    service.world.advance(service.world.lease_seconds + 1)  # the back-off, the dead one's lease
    report = await service.run(sync("notification"))

    assert report.outcome == "synced"
    assert external_id_for(own) not in service.world.coconut.blocks[STAFF]
    assert service.world.calendar.live_events(user.id)[0].body["subject"] != "Edited by me"
    assert not (await service.record()).cursor.unconfirmed_writes, "cleared by the stored cursor"


def dentist() -> dict[str, object]:
    """A staff member's own busy hour in Outlook, tomorrow."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    return {
        "subject": "Dentist",
        "showAs": "busy",
        "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(hours=1)).replace(tzinfo=None).isoformat(),
            "timeZone": "UTC",
        },
    }


def test_a_paced_run_comes_back_on_the_second_before_the_window_has_room() -> None:
    """The queue delays in whole seconds: the retry is sent for the second before the room
    (the rest is waited out in place), and is not dropped as already scheduled on arrival."""
    record = StaffRecord(staff_id=STAFF)
    paced = GraphRetryable("paced", 9.6, status=429, code=PACED)

    delay, changes = _back_off(record, paced)

    assert delay == 9.0
    assert changes.outcome is not None
    assert changes.outcome.throttled_until is not None
    left = changes.outcome.throttled_until - datetime.now(UTC)
    assert timedelta(seconds=8) < left <= timedelta(seconds=9) - timedelta(seconds=0.4)


async def test_an_import_round_reads_the_rows_of_the_events_it_lists_only() -> None:
    """A notification's round lists what changed in Outlook: the appointments ahead cost it
    nothing, while an own event a person edited is still recognised and repaired."""
    service = Service()
    user = service.mailbox()
    for number in range(1, 11):
        await service.deliver(appointment_at(1, coconut_id=f"A-{1000 + number}", starts=tomorrow()))
    await service.run()  # the events, the listings and a first delta round
    await service.run(sync("timer"))  # the round that lists the events just made
    [edited, *_] = service.world.calendar.live_events(user.id)
    service.world.calendar.person_edit(user.id, edited.id, {"subject": "Edited by me"})
    own = service.world.calendar.person_create(user.id, dentist())
    with pytest.MonkeyPatch.context() as monkeypatch:
        reads = RowsRead(service, monkeypatch)

        report = await service.run(sync("notification"))

    assert report.outcome == "synced"
    assert reads.item_keys == [edited.coconut_key], "the edited event's row, by its id"
    assert list(service.world.coconut.blocks[STAFF]) == [external_id_for(own)]
    repaired = service.world.calendar.live_events(user.id)
    assert "Edited by me" not in {event.body.get("subject") for event in repaired}
    assert (await service.record()).outcome.event_count == 10
