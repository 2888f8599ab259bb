"""Retention over `MemoryWorld`: content goes after the item ended and its retention passed, the
tombstone keeps stale deliveries stale, tombstones go once nothing can bring the item back, a
disconnect withholds what only that staff member needed, and the events stay as history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.coconut.webhook_models import Delivery
from sync.desired_state import DesiredItem, decide, leaves_events_alone, without_content
from sync.memory.world import MemoryWorld
from sync.ports import MailboxUser, StoredItem
from sync.retention import (
    TOMBSTONE_HORIZON,
    oldest_listed_end,
    retention_step,
)
from sync.staff_record import Connection, StaffChanges
from sync.work import StaffSyncRequest
from tests.sync.payloads import appointment_at, appointment_deleted_at, tomorrow

KEY = "appointment:A-1001"
# `tests.sync.payloads` appointments end here.
ENDS = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)
RETENTION = timedelta(days=30)
KEPT_UNTIL = ENDS + RETENTION
AFTER = timedelta(seconds=1)


class Service:
    def __init__(self) -> None:
        self.world = MemoryWorld()
        self.worker = self.world.worker()

    def mailbox(self, staff_id: str = "U-42") -> MailboxUser:
        mail = f"{staff_id.lower()}@bank.example"
        self.world.coconut.add_user(staff_id, mail)
        return self.world.calendar.add_user(mail)

    async def deliver(self, delivery: Delivery) -> str:
        """Coconut changes its record and sends the webhook; the endpoint records it."""
        self.world.coconut.apply(delivery)
        result = await self.world.items.record(delivery)
        await self.world.queue.request_sync(result.staff_ids, "webhook")
        return result.outcome

    async def settle(self) -> None:
        while self.world.queue.messages:
            await self.worker.handle(self.world.queue.take())

    async def full_sync(self, staff_id: str = "U-42") -> None:
        request = StaffSyncRequest(staff_id=staff_id, reason="ops", full=True)
        await self.worker.run(request)

    async def stored(self, key: str = KEY) -> DesiredItem | None:
        return (await self.world.table.read(key))[0]

    def events(self, user: MailboxUser) -> dict[str, str]:
        return {
            str(e.coconut_key): e.change_key
            for e in self.world.calendar.live_events(user.id)
            if e.coconut_key
        }


async def booked(service: Service) -> MailboxUser:
    user = service.mailbox()
    await service.deliver(appointment_at(1))
    await service.settle()
    assert list(service.events(user)) == [KEY]
    return user


# ----- the rules, pure ------------------------------------------------------------------------


def stored(item: DesiredItem, *, has_content: bool) -> StoredItem:
    return StoredItem(item, "etag", has_content)


def recorded(revision: int = 1, at: datetime = ENDS - timedelta(days=3)) -> DesiredItem:
    record = decide(None, appointment_at(revision)).record
    assert record is not None
    return record.model_copy(update={"recorded_at": at})


def test_content_is_kept_until_the_retention_after_the_end_has_passed() -> None:
    item = recorded()

    assert retention_step(stored(item, has_content=True), KEPT_UNTIL, RETENTION) == "keep"
    assert retention_step(stored(item, has_content=True), KEPT_UNTIL + AFTER, RETENTION) == "purge"


def test_a_purged_record_goes_once_ended_past_retention_and_recorded_past_the_horizon() -> None:
    changed_at = KEPT_UNTIL - timedelta(days=1)  # Coconut changed it after the appointment
    purged = stored(without_content(recorded(at=changed_at), "retention"), has_content=False)

    assert retention_step(purged, KEPT_UNTIL + AFTER, RETENTION) == "keep", "a retry may come"
    later = changed_at + TOMBSTONE_HORIZON + AFTER
    assert retention_step(purged, later, RETENTION) == "forget"


def test_a_deletion_tombstone_goes_after_the_horizon_whenever_the_item_ends() -> None:
    deletion = decide(recorded(), appointment_deleted_at(2)).record
    assert deletion is not None
    assert deletion.ends_at == ENDS
    tombstone = stored(deletion.model_copy(update={"recorded_at": ENDS}), has_content=False)

    assert retention_step(tombstone, ENDS + timedelta(days=6), RETENTION) == "keep"
    assert retention_step(tombstone, ENDS + TOMBSTONE_HORIZON + AFTER, RETENTION) == "forget"


def test_content_withheld_at_a_disconnect_stays_a_tombstone_until_the_item_ends() -> None:
    withheld = stored(without_content(recorded(), "disconnect"), has_content=False)

    assert retention_step(withheld, ENDS + timedelta(days=10), RETENTION) == "keep"
    assert retention_step(withheld, KEPT_UNTIL + AFTER, RETENTION) == "forget"


def test_listings_never_reach_back_past_the_retention() -> None:
    now = datetime(2027, 3, 1, tzinfo=UTC)
    assert oldest_listed_end(now, RETENTION) == now - RETENTION


# ----- deciding on a purged record ------------------------------------------------------------


def test_a_purged_record_keeps_stale_and_duplicate_deliveries_out() -> None:
    purged = without_content(recorded(revision=2), "retention")

    assert decide(purged, appointment_at(1)).outcome == "stale"
    assert decide(purged, appointment_at(2)).outcome == "duplicate"
    newer = decide(purged, appointment_at(3))
    assert newer.outcome == "accepted", "a real change is recorded, with its content"
    assert newer.record is not None
    assert newer.record.has_content
    assert newer.record.purged is None


def test_a_withheld_record_takes_its_content_back_from_the_same_revision() -> None:
    withheld = without_content(recorded(revision=2), "disconnect")

    assert decide(withheld, appointment_at(1)).outcome == "stale"
    again = decide(withheld, appointment_at(2))
    assert again.outcome == "accepted"
    assert again.record is not None
    assert again.record.has_content
    assert again.reconcile_staff == {"U-42"}


def test_only_purged_or_absent_records_leave_their_events_alone() -> None:
    item = recorded()

    assert not leaves_events_alone(item)
    assert not leaves_events_alone(decide(item, appointment_deleted_at(2)).record)
    assert leaves_events_alone(without_content(item, "retention"))
    assert leaves_events_alone(None)


# ----- over the memory world ------------------------------------------------------------------


async def test_content_is_purged_after_retention_and_the_event_stays_as_history() -> None:
    service = Service()
    user = await booked(service)
    before = service.events(user)

    nothing = await service.world.retention.run(KEPT_UNTIL)
    assert (nothing.purged, nothing.forgotten) == (0, 0)
    kept = await service.stored()
    assert kept is not None
    assert kept.has_content

    outcome = await service.world.retention.run(KEPT_UNTIL + AFTER)

    assert (outcome.purged, outcome.forgotten) == (1, 0)
    purged = await service.stored()
    assert purged is not None
    assert not purged.has_content
    assert (purged.purged, purged.revision) == ("retention", 1)
    assert purged.staff_ids == {"U-42"}
    assert purged.staff_emails == {}
    await service.full_sync()
    assert service.events(user) == before, "neither removed nor rewritten"
    assert service.world.coconut.blocks["U-42"] == {}, "never imported back as busy time"


async def test_a_stale_delivery_after_the_purge_stays_stale() -> None:
    service = Service()
    user = service.mailbox()
    await service.deliver(appointment_at(2))
    await service.settle()
    await service.world.retention.run(KEPT_UNTIL + AFTER)
    before = service.events(user)

    assert await service.deliver(appointment_at(1, notes="an older note")) == "stale"
    assert await service.deliver(appointment_at(2)) == "duplicate"
    await service.settle()

    item = await service.stored()
    assert item is not None
    assert not item.has_content
    assert service.events(user) == before


async def test_the_tombstone_goes_once_nothing_can_bring_the_item_back() -> None:
    service = Service()
    user = await booked(service)
    await service.world.retention.run(KEPT_UNTIL + AFTER)
    purged = await service.stored()
    assert purged is not None
    assert purged.recorded_at is not None
    horizon = purged.recorded_at + TOMBSTONE_HORIZON

    outcome = await service.world.retention.run(max(KEPT_UNTIL, horizon) + AFTER)

    assert outcome.forgotten == 1
    assert await service.stored() is None
    before = service.events(user)
    await service.full_sync()
    assert service.events(user) == before, "an item without a record leaves its event alone"


async def test_a_deletion_tombstone_stays_until_its_event_is_gone() -> None:
    service = Service()
    user = await booked(service)
    await service.deliver(appointment_deleted_at(2))
    later = datetime.now(UTC) + TOMBSTONE_HORIZON + timedelta(hours=1)

    await service.world.retention.run(later)
    assert await service.stored() is not None, "the worker has not removed the event yet"

    await service.settle()
    assert service.events(user) == {}
    assert (await service.world.retention.run(later)).forgotten == 1
    assert await service.stored() is None


async def test_a_disconnect_withholds_what_only_that_staff_member_needed() -> None:
    service = Service()
    kim = service.mailbox("U-42")
    service.mailbox("U-43")
    soon = tomorrow()  # content a reconnect brings back is content the retention still keeps
    await service.deliver(appointment_at(1, ("U-42",), coconut_id="A-1", starts=soon))
    await service.deliver(appointment_at(1, ("U-42", "U-43"), coconut_id="A-2", starts=soon))
    await service.settle()
    assert set(service.events(kim)) == {"appointment:A-1", "appointment:A-2"}

    await service.world.staff.merge("U-42", StaffChanges(connection=Connection(disconnected=True)))
    await service.worker.run(StaffSyncRequest(staff_id="U-42", reason="ops", action="disconnect"))

    assert service.events(kim) == {}
    alone = await service.stored("appointment:A-1")
    shared = await service.stored("appointment:A-2")
    assert alone is not None
    assert not alone.has_content
    assert alone.purged == "disconnect"
    assert shared is not None
    assert shared.has_content, "U-43 still needs it"

    # A reconnect: Coconut's listing brings the same revision, and with it the content.
    await service.world.staff.merge("U-42", StaffChanges(connection=Connection(disconnected=False)))
    reconnect = appointment_at(1, ("U-42",), coconut_id="A-1", starts=soon)
    assert await service.deliver(reconnect) == "accepted"
    await service.settle()
    await service.full_sync()
    assert set(service.events(kim)) == {"appointment:A-1", "appointment:A-2"}


async def test_a_disconnect_of_the_last_synced_staff_member_withholds_a_shared_item() -> None:
    service = Service()
    service.mailbox("U-42")
    service.mailbox("U-43")
    await service.deliver(appointment_at(1, ("U-42", "U-43")))
    await service.settle()

    for staff_id in ("U-43", "U-42"):
        await service.world.staff.merge(
            staff_id, StaffChanges(connection=Connection(disconnected=True))
        )
        await service.worker.run(
            StaffSyncRequest(staff_id=staff_id, reason="ops", action="disconnect")
        )

    item = await service.stored()
    assert item is not None
    assert item.purged == "disconnect"


async def test_undecryptable_content_is_the_staff_members_error_and_a_newer_revision_heals_it() -> (
    None
):
    service = Service()
    await booked(service)
    await service.deliver(appointment_at(2, notes="changed"))
    service.world.table.make_unreadable(KEY)

    await service.settle()

    record = await service.world.staff.get("U-42")
    assert record is not None
    assert record.outcome.status == "Error"
    assert KEY in record.outcome.reason
    assert "SYNC_DATA_KEY" in record.outcome.reason
    assert "French" not in record.outcome.reason

    assert await service.deliver(appointment_at(3, notes="healed")) == "accepted"
    await service.settle()
    record = await service.world.staff.get("U-42")
    assert record is not None
    assert record.outcome.status == "Syncing"


@pytest.mark.parametrize("reason", ["retention", "disconnect"])
async def test_the_memory_table_reads_a_purged_record_like_storage_does(reason: str) -> None:
    service = Service()
    await booked(service)
    item, etag = await service.world.table.read(KEY)
    assert item is not None

    assert await service.world.table.swap(without_content(item, reason), etag)  # type: ignore[arg-type]

    shell, _ = await service.world.table.read(KEY, with_content=False)
    full, _ = await service.world.table.read(KEY)
    assert shell == full
    assert [s.item.key for s in await service.world.table.scan(ended_before=ENDS + AFTER)] == [KEY]
    assert await service.world.table.scan(ended_before=ENDS) == []
