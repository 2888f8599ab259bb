"""The calendar writer applies the plan to a mailbox (`MemoryCalendar`, strict where Graph is)
and keeps the link rows (`MemoryItemLinks`) so that every later run knows what it wrote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from sync.desired_state import DesiredItem, decide
from sync.export.calendar_writer import CalendarWriter, ExportOutcome
from sync.export.planning import EventLink
from sync.export.rendering import render_event
from sync.graph.calls import retry_later
from sync.graph.errors import GraphRetryable
from sync.memory.calendar import MemoryCalendar
from sync.memory.storage import MemoryItemLinks
from sync.ports import LinkSave, StaffItemRow, WrittenEvent
from tests.sync.payloads import appointment_at, appointment_deleted_at

STAFF = "U-42"
ZONE = "Pacific Standard Time"
A1, A2 = "appointment:A-1", "appointment:A-2"


def booked(
    revision: int,
    coconut_id: str = "A-1",
    *,
    staff: tuple[str, ...] = (STAFF,),
    notes: str = "Bring ID",
    status: str = "booked",
) -> DesiredItem:
    change = appointment_at(revision, staff, coconut_id=coconut_id, notes=notes, status=status)
    record = decide(None, change).record
    assert record is not None
    return record


def deleted(revision: int, coconut_id: str = "A-1") -> DesiredItem:
    record = decide(None, appointment_deleted_at(revision, coconut_id)).record
    assert record is not None
    return record


def rendered(item: DesiredItem) -> dict[str, Any]:
    return render_event(item, ZONE).to_graph()


class Mailbox:
    """One staff member's calendar, their link rows, and the items Coconut recorded."""

    def __init__(self) -> None:
        self.calendar = MemoryCalendar()
        self.user = self.calendar.add_user("u-42@bank.example", ZONE)
        self.links = MemoryItemLinks()
        self.writer = CalendarWriter(self.links, self.calendar)
        self.items: dict[str, DesiredItem] = {}

    async def deliver(self, *items: DesiredItem) -> None:
        for item in items:
            self.items[item.key] = item
            await self.links.mark_pending([STAFF], item.key)

    async def work(self, *, full: bool = False) -> list[StaffItemRow]:
        rows = await self.links.rows(STAFF)
        return [r for r in rows if full or r.pending or r.link.pending_create]

    async def write(
        self, rows: list[StaffItemRow] | None = None, *, full: bool = False
    ) -> ExportOutcome:
        work = await self.work(full=full) if rows is None else rows
        items = {row.item_key: self.items.get(row.item_key) for row in work}
        return await self.writer.write(STAFF, self.user, work, items, check_drift=full)

    def events(self) -> dict[str | None, list[dict[str, Any]]]:
        """Coconut id tag -> the bodies of the live events carrying it."""
        found: dict[str | None, list[dict[str, Any]]] = {}
        for event in self.calendar.live_events(self.user.id):
            found.setdefault(event.coconut_key, []).append(event.body)
        return found

    async def link(self, key: str) -> EventLink:
        [row] = [r for r in await self.links.rows(STAFF) if r.item_key == key]
        return row.link

    async def pending(self) -> list[str]:
        return sorted(r.item_key for r in await self.links.rows(STAFF) if r.pending)


async def test_a_second_run_over_the_same_state_writes_nothing() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2", notes="Mortgage"))

    first = await mailbox.write()

    assert (first.created, first.updated, first.removed, first.events) == (2, 0, 0, 2)
    assert mailbox.events() == {
        A1: [rendered(booked(1))],
        A2: [rendered(booked(1, "A-2", notes="Mortgage"))],
    }
    assert await mailbox.pending() == []
    await mailbox.deliver(booked(1))  # a duplicate delivery marks the row again
    requests = mailbox.calendar.requests
    again = await mailbox.write()
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert mailbox.calendar.requests == requests, "no Graph request at all"
    assert await mailbox.pending() == [], "the mark is cleared all the same"


async def test_a_change_updates_the_same_event() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1))
    await mailbox.write()
    event_id = (await mailbox.link(A1)).event_id

    await mailbox.deliver(booked(2, notes="Prefers French"))
    outcome = await mailbox.write()

    assert (outcome.created, outcome.updated) == (0, 1)
    assert mailbox.events() == {A1: [rendered(booked(2, notes="Prefers French"))]}
    link = await mailbox.link(A1)
    assert event_id is not None
    assert link.event_id == event_id
    stored = mailbox.calendar.mailboxes[mailbox.user.id].events[event_id]
    assert link.change_key == stored.change_key


async def test_removed_then_wanted_again_makes_a_new_event_with_a_fresh_transaction_id() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1))
    await mailbox.write()
    first = (await mailbox.link(A1)).event_id

    await mailbox.deliver(booked(2, staff=("U-7",)))  # reassigned to someone else
    assert (await mailbox.write()).removed == 1
    assert mailbox.events() == {}
    assert await mailbox.link(A1) == EventLink(item_key=A1, generation=1), "kept, retired"

    await mailbox.deliver(booked(3))  # and back
    assert (await mailbox.write()).created == 1

    assert mailbox.events() == {A1: [rendered(booked(3))]}
    link = await mailbox.link(A1)
    assert (link.generation, link.pending_create) == (1, False)
    assert link.event_id not in (None, first)


async def test_the_event_of_an_item_deleted_in_coconut_goes_with_its_row() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2"))
    await mailbox.write()

    await mailbox.deliver(deleted(2))
    outcome = await mailbox.write()

    assert (outcome.removed, outcome.events) == (1, 0)
    assert list(mailbox.events()) == [A2]
    assert [r.item_key for r in await mailbox.links.rows(STAFF)] == [A2]


async def test_a_lost_create_answer_is_recovered_without_a_second_event() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1))
    mailbox.calendar.lose_next_answers(1)
    with pytest.raises(GraphRetryable):
        await mailbox.write()
    assert (await mailbox.link(A1)).pending_create, "recorded before the POST"
    assert len(mailbox.events()[A1]) == 1, "the POST itself went through"

    await mailbox.deliver(booked(2, notes="Updated meanwhile"))
    await mailbox.write()

    assert mailbox.events() == {A1: [rendered(booked(2, notes="Updated meanwhile"))]}
    link = await mailbox.link(A1)
    assert not link.pending_create
    assert (link.generation, link.event_id) == (0, "ev-1"), "the event first made is adopted"
    requests = mailbox.calendar.requests
    await mailbox.write(full=False)
    assert mailbox.calendar.requests == requests


async def test_a_retried_run_after_a_lost_answer_reuses_the_transaction_id() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1))
    mailbox.calendar.lose_next_answers(1)
    with pytest.raises(GraphRetryable):
        await mailbox.write()

    await mailbox.write()  # the same state, retried

    assert len(mailbox.events()[A1]) == 1
    transactions = mailbox.calendar.mailboxes[mailbox.user.id].transactions
    assert list(transactions.values()) == ["ev-1"]


async def test_a_lost_create_answer_for_an_item_no_longer_wanted_leaves_no_event() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1))
    mailbox.calendar.lose_next_answers(1)
    with pytest.raises(GraphRetryable):
        await mailbox.write()

    await mailbox.deliver(booked(2, status="cancelled"))
    assert (await mailbox.write()).removed == 1
    assert mailbox.events() == {}
    assert await mailbox.link(A1) == EventLink(item_key=A1, generation=1)

    await mailbox.deliver(booked(3))  # rebooked: a new transaction id, so a new event
    await mailbox.write()
    assert mailbox.events() == {A1: [rendered(booked(3))]}


async def test_a_recovered_create_never_leaves_two_events_for_one_item() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1))
    for attempt in ("tx-a", "tx-b"):  # two events tagged with the item (two lost answers)
        await mailbox.calendar.create_event(
            mailbox.user.id, rendered(booked(1)), transaction_id=attempt, coconut_key=A1
        )
    [row] = await mailbox.links.rows(STAFF)
    await mailbox.links.save_link(row, EventLink(item_key=A1, pending_create=True), done=False)

    await mailbox.write()

    assert mailbox.events() == {A1: [rendered(booked(1))]}
    assert (await mailbox.link(A1)).event_id == "ev-1"


async def test_an_update_of_an_event_deleted_in_outlook_creates_it_anew() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1))
    await mailbox.write()
    gone = (await mailbox.link(A1)).event_id
    assert gone is not None
    mailbox.calendar.person_delete(mailbox.user.id, gone)

    await mailbox.deliver(booked(2, notes="Moved to the afternoon"))
    outcome = await mailbox.write()

    assert (outcome.created, outcome.updated) == (1, 0)
    assert mailbox.events() == {A1: [rendered(booked(2, notes="Moved to the afternoon"))]}
    link = await mailbox.link(A1)
    assert link.generation == 1, "the spent transaction id is not reused"
    assert link.event_id != gone


async def test_a_full_run_repairs_what_outlook_changed() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2", notes="Mortgage"))
    await mailbox.write()
    edited, removed = (await mailbox.link(A1)).event_id, (await mailbox.link(A2)).event_id
    assert edited is not None
    assert removed is not None
    mailbox.calendar.person_edit(mailbox.user.id, edited, {"subject": "Lunch"})
    mailbox.calendar.person_delete(mailbox.user.id, removed)

    assert (await mailbox.write()).updated == 0, "an incremental run does not look"
    outcome = await mailbox.write(full=True)

    assert (outcome.created, outcome.updated) == (1, 1)
    assert mailbox.events() == {
        A1: [rendered(booked(1))],
        A2: [rendered(booked(1, "A-2", notes="Mortgage"))],
    }
    assert (await mailbox.link(A2)).generation == 1
    again = await mailbox.write(full=True)
    assert (again.created, again.updated, again.removed) == (0, 0, 0)


async def test_drift_seen_by_the_import_is_repaired() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2", notes="Mortgage"))
    await mailbox.write()
    edited, removed = (await mailbox.link(A1)).event_id, (await mailbox.link(A2)).event_id
    assert edited is not None
    assert removed is not None
    mailbox.calendar.person_edit(mailbox.user.id, edited, {"subject": "Lunch"})
    mailbox.calendar.person_delete(mailbox.user.id, removed)
    rows = await mailbox.links.rows(STAFF)
    seen = mailbox.calendar.mailboxes[mailbox.user.id].events[edited].change_key

    outcome = await mailbox.writer.repair_drift(
        STAFF, mailbox.user, rows, dict(mailbox.items), {A1: seen, A2: None}
    )

    assert (outcome.created, outcome.updated) == (1, 1)
    assert mailbox.events() == {
        A1: [rendered(booked(1))],
        A2: [rendered(booked(1, "A-2", notes="Mortgage"))],
    }


async def test_a_delivery_during_the_run_keeps_its_row_pending() -> None:
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2"))
    rows = await mailbox.work()
    await mailbox.deliver(booked(2, notes="Changed while the run was on"))  # after the read

    await mailbox.write(rows)

    assert await mailbox.pending() == [A1], "the newer delivery waits for the next run"
    await mailbox.write()
    assert await mailbox.pending() == []
    assert mailbox.events()[A1] == [rendered(booked(2, notes="Changed while the run was on"))]


class CountedLinks(MemoryItemLinks):
    """Link rows that note each write request: how many links each one carried."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    async def save_link(self, row: StaffItemRow, link: EventLink, *, done: bool) -> StaffItemRow:
        self.writes.append(1)
        return await super().save_link(row, link, done=done)

    async def save_links(self, saves: Sequence[LinkSave]) -> list[StaffItemRow]:
        if saves:
            self.writes.append(len(saves))
        return await super().save_links(saves)


class LinkedFirstCalendar(MemoryCalendar):
    """Checks, at each POST, that the item's link already says a create is under way."""

    def __init__(self, links: MemoryItemLinks) -> None:
        super().__init__()
        self._links = links

    async def create_event(
        self, user_id: str, body: dict[str, Any], *, transaction_id: str, coconut_key: str
    ) -> WrittenEvent:
        [row] = [r for r in await self._links.rows(STAFF) if r.item_key == coconut_key]
        assert row.link.pending_create, "the link is written before the POST"
        return await super().create_event(
            user_id, body, transaction_id=transaction_id, coconut_key=coconut_key
        )


async def test_a_run_s_creates_are_linked_in_one_write_before_and_one_after() -> None:
    mailbox = Mailbox()
    links = mailbox.links = CountedLinks()
    mailbox.calendar = LinkedFirstCalendar(links)
    mailbox.user = mailbox.calendar.add_user("u-42@bank.example", ZONE)
    mailbox.writer = CalendarWriter(links, mailbox.calendar)
    keys = [f"A-{n}" for n in range(1, 7)]
    await mailbox.deliver(*(booked(1, key) for key in keys))

    outcome = await mailbox.write()

    assert outcome.created == 6
    assert links.writes == [6, 6]
    assert await mailbox.pending() == []
    assert all(len(mailbox.events()[f"appointment:{key}"]) == 1 for key in keys)
    assert not any(row.link.pending_create for row in await links.rows(STAFF))


async def test_the_events_made_before_a_run_fails_stay_linked() -> None:
    """Graph throttles the mailbox part-way: the run fails, and the events it made keep their
    links (the next run neither looks them up nor makes them again)."""
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2"))
    mailbox.calendar.throttle_next(1)

    with pytest.raises(GraphRetryable):
        await mailbox.write()

    made = [key for key, events in mailbox.events().items() if events]
    assert len(made) == 1
    [key] = made
    link = await mailbox.link(str(key))
    assert link.event_id is not None
    assert not link.pending_create


async def test_a_create_whose_retry_was_throttled_after_a_lost_answer_is_looked_for() -> None:
    """The POST made the event but its answer was lost (a 503), and the retry was refused
    with a 429: the event exists, so its link stays "create pending" and the item, deleted in
    Coconut meanwhile, has its event found and removed instead of left in Outlook."""
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2"))
    after_a_lost_answer = retry_later(1.0, 429, None)
    after_a_lost_answer.never_applied = False  # as GraphCaller says after a 503, then a 429
    mailbox.calendar.lose_next_answers(1, answer=after_a_lost_answer)

    with pytest.raises(GraphRetryable):
        await mailbox.write()

    [made_unheard] = [key for key in (A1, A2) if (await mailbox.link(key)).pending_create]
    assert len(mailbox.events()[made_unheard]) == 1
    item = mailbox.items[made_unheard]
    await mailbox.deliver(deleted(2, item.key.split(":", 1)[1]))

    await mailbox.write()

    assert not mailbox.events().get(made_unheard), "the event Coconut no longer wants is gone"


async def test_a_create_graph_refused_is_posted_next_time_without_a_look_up() -> None:
    """A 429 means Graph did not make the event: its link goes back to what it was, so the
    next run posts it at once instead of first searching the mailbox for it."""
    mailbox = Mailbox()
    await mailbox.deliver(booked(1), booked(1, "A-2"))
    mailbox.calendar.throttle_next(1)

    with pytest.raises(GraphRetryable):
        await mailbox.write()

    [refused] = [key for key in (A1, A2) if not mailbox.events().get(key)]
    row = next(r for r in await mailbox.links.rows(STAFF) if r.item_key == refused)
    assert row.pending, "still to be written"
    assert not row.link.pending_create, "not to be looked for: Graph never made it"

    outcome = await mailbox.write()

    assert outcome.created == 1
    assert outcome.adopted == []
    assert all(len(mailbox.events()[key]) == 1 for key in (A1, A2))
