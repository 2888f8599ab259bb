"""`ListingReconciler`: Coconut's listings recorded as webhooks would be, and what a complete
listing no longer shows withdrawn, over the memory adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.coconut.webhook_models import Delivery
from sync.desired_state import is_wanted_by
from sync.listings import ListingReconciler
from sync.memory.world import MemoryWorld
from tests.sync.payloads import appointment_at, appointment_deleted_at

STAFF = "U-42"
KEY = "appointment:A-1001"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


class Coconut:
    """Coconut's record, the service's recording of webhooks, and the reconciler."""

    def __init__(self) -> None:
        self.world = MemoryWorld()
        self.world.coconut.add_user(STAFF, "u-42@bank.example")
        self.listings = ListingReconciler(self.world.coconut, self.world.items, self.world.links)

    def change(self, delivery: Delivery) -> None:
        """Coconut changes its record; the webhook is lost."""
        self.world.coconut.apply(delivery)

    async def webhook(self, delivery: Delivery) -> None:
        self.world.coconut.apply(delivery)
        await self.world.items.record(delivery)

    async def wanted(self, staff_id: str = STAFF) -> bool:
        item = await self.world.items.get(KEY)
        return item is not None and is_wanted_by(item, staff_id)


async def test_onboarding_records_what_coconut_holds_as_a_webhook_would() -> None:
    coconut = Coconut()
    coconut.change(appointment_at(3))

    repair = await coconut.listings.reconcile(STAFF, end_after=LONG_AGO)

    assert (repair.created, repair.updated, repair.removed) == (1, 0, 0)
    assert repair.staff_to_sync == {STAFF}
    recorded = await coconut.world.items.get(KEY)
    assert recorded is not None
    assert recorded.revision == 3
    assert await coconut.wanted()
    rows = await coconut.world.links.rows(STAFF)
    assert [(r.item_key, r.pending) for r in rows] == [(KEY, True)], "the export will write it"


async def test_a_newer_revision_is_recorded_and_an_equal_one_changes_nothing() -> None:
    coconut = Coconut()
    await coconut.webhook(appointment_at(1))
    coconut.change(appointment_at(2, notes="moved to the afternoon"))

    first = await coconut.listings.reconcile(STAFF, end_after=LONG_AGO)
    again = await coconut.listings.reconcile(STAFF, end_after=LONG_AGO)

    assert (first.created, first.updated, first.removed) == (0, 1, 0)
    assert not again.changed, "known from both sources: no churn"


async def test_a_deletion_whose_webhook_was_lost_is_withdrawn() -> None:
    coconut = Coconut()
    await coconut.webhook(appointment_at(1))
    coconut.change(appointment_deleted_at(2))

    repair = await coconut.listings.reconcile(STAFF, end_after=LONG_AGO)

    assert repair.removed == 1
    assert not await coconut.wanted()
    assert [r.pending for r in await coconut.world.links.rows(STAFF)] == [True]


async def test_a_reassignment_whose_webhook_was_lost_reaches_both_calendars() -> None:
    coconut = Coconut()
    coconut.world.coconut.add_user("U-7", "u-7@bank.example")
    await coconut.webhook(appointment_at(1))
    coconut.change(appointment_at(2, ("U-7",)))

    old = await coconut.listings.reconcile(STAFF, end_after=LONG_AGO)
    new = await coconut.listings.reconcile("U-7", end_after=LONG_AGO)

    assert old.removed == 1, "gone from the old staff member's listing"
    assert (new.created, new.updated) == (0, 1)
    assert new.staff_to_sync == {"U-7"}, "the old calendar was reached by the withdrawal"
    assert not await coconut.wanted(STAFF)
    assert await coconut.wanted("U-7")


async def test_a_webhook_recorded_after_the_listing_began_is_not_withdrawn() -> None:
    """The listing raced a change: what a webhook recorded meanwhile stands."""
    coconut = Coconut()
    await coconut.webhook(appointment_at(1))
    listing_began = datetime.now(UTC) - timedelta(seconds=1)

    withdrawn = await coconut.world.items.withdraw(KEY, STAFF, listed_since=listing_began)

    assert not withdrawn
    assert await coconut.wanted()


async def test_two_staff_members_repairs_at_once_both_withdraw_a_shared_item() -> None:
    """An appointment of two staff members was deleted and the webhook lost: both repairs,
    listing at the same time, take it out; one withdrawal is no webhook to the other."""
    coconut = Coconut()
    coconut.world.coconut.add_user("U-7", "u-7@bank.example")
    await coconut.webhook(appointment_at(1, (STAFF, "U-7")))
    listing_began = datetime.now(UTC)

    first = await coconut.world.items.withdraw(KEY, STAFF, listed_since=listing_began)
    second = await coconut.world.items.withdraw(KEY, "U-7", listed_since=listing_began)

    assert (first, second) == (True, True)
    assert not await coconut.wanted(STAFF)
    assert not await coconut.wanted("U-7")


async def test_an_item_that_ended_before_the_window_is_never_withdrawn() -> None:
    coconut = Coconut()
    await coconut.webhook(appointment_at(1))
    coconut.world.coconut.record.clear()  # not listed any more: it ended before the window

    after_it_ended = datetime.now(UTC) + timedelta(days=3650)
    repair = await coconut.listings.reconcile(STAFF, end_after=after_it_ended)

    assert repair.removed == 0
    assert await coconut.wanted()


async def test_a_listing_that_shows_a_withdrawn_item_again_restores_it() -> None:
    """A listing can miss an item that did not change (the pages shifted under it): the next
    listing shows it at the same revision, and it comes back."""
    coconut = Coconut()
    await coconut.webhook(appointment_at(1))
    kept = coconut.world.coconut.record.pop(KEY)
    await coconut.listings.reconcile(STAFF, end_after=LONG_AGO)
    assert not await coconut.wanted()

    coconut.world.coconut.record[KEY] = kept
    repair = await coconut.listings.reconcile(STAFF, end_after=LONG_AGO)

    assert repair.updated == 1
    assert await coconut.wanted()
