"""`ItemLinks`: per staff member, each item's Graph event and whether it waits for a run.

A delivery marks a row pending; a run clears the mark only by a swap against the ETag it read,
so a delivery that lands during the run keeps the row pending for the next one. A lost mark is a
lost appointment in somebody's calendar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.export.planning import EventLink
from sync.ports import ItemFailure, ItemLinks, LinkSave, StaffItemRow
from tests.contract.adapters import unique

SINCE = datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=UTC)


def linked(item_key: str, generation: int = 0) -> EventLink:
    return EventLink(
        item_key=item_key,
        event_id=f"AAMkAG-{unique('ev')}",
        content_hash="c0ffee",
        change_key="ck-1",
        generation=generation,
    )


def failing(count: int = 1) -> ItemFailure:
    return ItemFailure(
        count=count,
        since=SINCE,
        reason="Graph answered 500 ErrorInternalServerError",
        retry_at=SINCE + timedelta(minutes=2**count),
    )


async def the_row(links: ItemLinks, staff_id: str, item_key: str) -> StaffItemRow:
    rows = [row for row in await links.rows(staff_id) if row.item_key == item_key]
    assert len(rows) == 1, rows
    return rows[0]


async def test_a_mark_makes_a_pending_row_in_each_partition(item_links: ItemLinks) -> None:
    staff = [unique("U"), unique("U")]
    item_key = f"appointment:{unique('A')}"

    await item_links.mark_pending(staff, item_key)

    for staff_id in staff:
        row = await the_row(item_links, staff_id, item_key)
        assert (row.staff_id, row.pending, row.link) == (
            staff_id,
            True,
            EventLink(item_key=item_key),
        )
        assert row.etag


async def test_a_staff_member_with_no_rows_has_none(item_links: ItemLinks) -> None:
    assert await item_links.rows(unique("U")) == []


async def test_save_link_done_clears_the_mark(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    read = await the_row(item_links, staff_id, item_key)
    link = linked(item_key)

    saved = await item_links.save_link(read, link, done=True)

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending) == (link, False)
    assert (saved.link, saved.pending, saved.keep_pending) == (link, False, False)
    assert saved.etag == row.etag != read.etag


async def test_save_link_not_done_keeps_the_mark(item_links: ItemLinks) -> None:
    """A create's link is written before the POST (`pending_create`): the run is not over."""
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    read = await the_row(item_links, staff_id, item_key)
    link = EventLink(item_key=item_key, generation=1, pending_create=True)

    saved = await item_links.save_link(read, link, done=False)

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending) == (link, True)
    assert (saved.pending, saved.etag) == (True, row.etag)


async def test_a_mark_after_the_read_survives_the_run(item_links: ItemLinks) -> None:
    """A delivery lands between the run's read and its write: the row stays pending, the link
    is written all the same, and the row the run goes on with says so (`keep_pending`)."""
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    read = await the_row(item_links, staff_id, item_key)
    await item_links.mark_pending([staff_id], item_key)
    link = linked(item_key)

    saved = await item_links.save_link(read, link, done=True)

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending) == (link, True)
    assert (saved.pending, saved.keep_pending, saved.etag) == (True, True, row.etag)
    # From then on this run may write the link, never clear the mark.
    later = linked(item_key, generation=1)
    again = await item_links.save_link(saved, later, done=True)
    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending) == (later, True)
    assert again.keep_pending


# ----- several links at once (one transaction per staff member) -----------------------------


# Few saves go as plain requests, many as one transaction: both ways must write the same.
@pytest.mark.parametrize("rows_of_one_staff_member", [3, 10])
async def test_save_links_writes_each_as_save_link_would(
    item_links: ItemLinks, rows_of_one_staff_member: int
) -> None:
    staff_id, other = unique("U"), unique("U")
    keys = [f"appointment:{unique('A')}" for _ in range(rows_of_one_staff_member)]
    for key in keys:
        await item_links.mark_pending([staff_id], key)
    await item_links.mark_pending([other], keys[0])
    rows = [await the_row(item_links, staff_id, key) for key in keys]
    elsewhere = await the_row(item_links, other, keys[0])
    creating = EventLink(item_key=keys[1], generation=1, pending_create=True)
    saves = [
        LinkSave(rows[0], linked(keys[0]), done=True),
        LinkSave(rows[1], creating, done=False),
        LinkSave(elsewhere, linked(keys[0]), done=True),
        *(LinkSave(row, row.link, done=True) for row in rows[2:]),
    ]

    saved = await item_links.save_links(saves)

    stored = [
        await the_row(item_links, staff_id, keys[0]),
        await the_row(item_links, staff_id, keys[1]),
        await the_row(item_links, other, keys[0]),
        *[await the_row(item_links, staff_id, key) for key in keys[2:]],
    ]
    assert [(row.link, row.pending) for row in stored] == [
        (saves[0].link, False),
        (creating, True),
        (saves[2].link, False),
        *((row.link, False) for row in rows[2:]),
    ]
    assert [(s.link, s.pending, s.keep_pending, s.etag) for s in saved] == [
        (row.link, row.pending, False, row.etag) for row in stored
    ]


@pytest.mark.parametrize("rows", [3, 10])
async def test_save_links_keeps_a_row_marked_after_the_read_pending(
    item_links: ItemLinks, rows: int
) -> None:
    """One row changed by a newer delivery: it stays pending, and the others are written as
    if saved one by one (as plain requests, or after the transaction failed)."""
    staff_id = unique("U")
    changed, *unchanged = (f"appointment:{unique('A')}" for _ in range(rows))
    for key in (changed, *unchanged):
        await item_links.mark_pending([staff_id], key)
    stale = await the_row(item_links, staff_id, changed)
    fresh = [await the_row(item_links, staff_id, key) for key in unchanged]
    await item_links.mark_pending([staff_id], changed)

    saved = await item_links.save_links(
        [
            LinkSave(stale, linked(changed), done=True),
            *(LinkSave(row, linked(row.item_key), done=True) for row in fresh),
        ]
    )

    assert (await the_row(item_links, staff_id, changed)).pending
    for key in unchanged:
        assert not (await the_row(item_links, staff_id, key)).pending
    assert [(s.pending, s.keep_pending) for s in saved] == [
        (True, True),
        *((False, False) for _ in unchanged),
    ]
    # The kept row goes on as `save_link` would leave it: its link written, never cleared.
    later = linked(changed, generation=1)
    [again] = await item_links.save_links([LinkSave(saved[0], later, done=True)])
    row = await the_row(item_links, staff_id, changed)
    assert (row.link, row.pending, again.keep_pending) == (later, True, True)


async def test_save_links_of_nothing_is_nothing(item_links: ItemLinks) -> None:
    assert await item_links.save_links([]) == []


async def test_a_mark_keeps_the_link(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    link = linked(item_key)
    await item_links.save_link(await the_row(item_links, staff_id, item_key), link, done=True)

    await item_links.mark_pending([staff_id], item_key)

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending) == (link, True)


async def test_forget_deletes_a_row_unchanged_since_read(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)

    assert await item_links.forget(await the_row(item_links, staff_id, item_key))

    assert await item_links.rows(staff_id) == []


async def test_forget_keeps_a_row_changed_since_read(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    stale = await the_row(item_links, staff_id, item_key)
    await item_links.mark_pending([staff_id], item_key)

    assert not await item_links.forget(stale)

    assert (await the_row(item_links, staff_id, item_key)).pending


async def test_forget_keeps_a_row_a_run_must_leave_pending(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    read = await the_row(item_links, staff_id, item_key)
    await item_links.mark_pending([staff_id], item_key)
    kept = await item_links.save_link(read, linked(item_key), done=True)

    assert not await item_links.forget(kept)

    assert (await the_row(item_links, staff_id, item_key)).pending


async def test_forget_of_a_row_already_gone_is_done(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    row = await the_row(item_links, staff_id, item_key)
    assert await item_links.forget(row)

    assert await item_links.forget(row)


async def test_pending_by_staff_counts_marked_rows_and_creates_in_flight(
    item_links: ItemLinks,
) -> None:
    busy, settled = unique("U"), unique("U")
    marked, in_flight, done = (f"appointment:{unique('A')}" for _ in range(3))
    await item_links.mark_pending([busy, settled], marked)
    await item_links.mark_pending([busy], in_flight)
    await item_links.mark_pending([busy], done)
    creating = EventLink(item_key=in_flight, generation=2, pending_create=True)
    await item_links.save_link(await the_row(item_links, busy, in_flight), creating, done=True)
    await item_links.save_link(await the_row(item_links, busy, done), linked(done), done=True)
    await item_links.save_link(
        await the_row(item_links, settled, marked), linked(marked), done=True
    )

    counts = await item_links.pending_by_staff()

    assert (counts[busy], counts[settled]) == (2, 0)


async def test_keys_with_characters_a_table_key_refuses_round_trip(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U/#?%"), f"appointment:{unique('A/B#?%')}"

    await item_links.mark_pending([staff_id], item_key)

    row = await the_row(item_links, staff_id, item_key)
    assert (row.staff_id, row.item_key) == (staff_id, item_key)
    assert (await item_links.pending_by_staff())[staff_id] == 1


# ----- an item that keeps failing ------------------------------------------------------------


async def test_a_failure_is_kept_on_the_row_pending(item_links: ItemLinks) -> None:
    """One item Graph keeps refusing waits for its retry time and never holds back the rest:
    the failure reads back whole, the row stays pending, its link untouched."""
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    link = linked(item_key)
    saved = await item_links.save_link(
        await the_row(item_links, staff_id, item_key), link, done=True
    )

    await item_links.record_failure(saved, failing(3))

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending, row.failure) == (link, True, failing(3))
    assert not row.due(SINCE)
    assert row.due(SINCE + timedelta(minutes=8))
    assert (await item_links.pending_by_staff())[staff_id] == 1


async def test_a_failure_is_recorded_whatever_changed_meanwhile(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    stale = await the_row(item_links, staff_id, item_key)
    link = linked(item_key)
    await item_links.save_link(stale, link, done=True)

    await item_links.record_failure(stale, failing())

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending, row.failure) == (link, True, failing())


async def test_a_failure_of_a_row_forgotten_meanwhile_makes_a_bare_pending_row(
    item_links: ItemLinks,
) -> None:
    """The row is written again from the failure alone: pending, no link of the old row."""
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    saved = await item_links.save_link(
        await the_row(item_links, staff_id, item_key), linked(item_key, generation=4), done=True
    )
    assert await item_links.forget(saved)

    await item_links.record_failure(saved, failing())

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending, row.failure) == (EventLink(item_key=item_key), True, failing())


async def test_a_link_saved_done_clears_the_failure(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    await item_links.record_failure(await the_row(item_links, staff_id, item_key), failing(2))
    link = linked(item_key)

    await item_links.save_link(await the_row(item_links, staff_id, item_key), link, done=True)

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending, row.failure) == (link, False, None)
    assert row.due(SINCE)


async def test_a_link_saved_not_done_keeps_the_failure(item_links: ItemLinks) -> None:
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    await item_links.record_failure(await the_row(item_links, staff_id, item_key), failing(2))
    link = EventLink(item_key=item_key, generation=1, pending_create=True)

    await item_links.save_link(await the_row(item_links, staff_id, item_key), link, done=False)

    row = await the_row(item_links, staff_id, item_key)
    assert (row.link, row.pending, row.failure) == (link, True, failing(2))


async def test_a_mark_keeps_the_failure(item_links: ItemLinks) -> None:
    """A new delivery does not make a failing item due before its retry time."""
    staff_id, item_key = unique("U"), f"appointment:{unique('A')}"
    await item_links.mark_pending([staff_id], item_key)
    await item_links.record_failure(await the_row(item_links, staff_id, item_key), failing(2))

    await item_links.mark_pending([staff_id], item_key)

    assert (await the_row(item_links, staff_id, item_key)).failure == failing(2)


# ----- reads that do not grow with history ----------------------------------------------------


async def _settled(links: ItemLinks, staff_id: str, item_key: str, ends: datetime) -> EventLink:
    """A row whose event is written and whose mark is cleared: no run has work for it."""
    await links.mark_pending([staff_id], item_key, ends=ends)
    link = linked(item_key)
    await links.save_link(await the_row(links, staff_id, item_key), link, done=True)
    return link


async def test_pending_reads_only_the_rows_a_run_has_work_for(item_links: ItemLinks) -> None:
    staff_id = unique("U")
    done, marked, creating = (f"appointment:{unique('A')}" for _ in range(3))
    await _settled(item_links, staff_id, done, SINCE)
    await item_links.mark_pending([staff_id], marked, ends=SINCE)
    await item_links.mark_pending([staff_id], creating, ends=SINCE)
    in_flight = EventLink(item_key=creating, generation=1, pending_create=True)
    await item_links.save_link(await the_row(item_links, staff_id, creating), in_flight, done=True)

    pending = await item_links.pending(staff_id)

    assert sorted(r.item_key for r in pending) == sorted([marked, creating])


async def test_current_reads_the_items_ending_after_the_bound_and_all_pending_ones(
    item_links: ItemLinks,
) -> None:
    staff_id = unique("U")
    old, recent, old_but_changed, unknown_end = (f"appointment:{unique('A')}" for _ in range(4))
    await _settled(item_links, staff_id, old, SINCE - timedelta(days=400))
    await _settled(item_links, staff_id, recent, SINCE + timedelta(hours=1))
    await item_links.mark_pending([staff_id], old_but_changed, ends=SINCE - timedelta(days=90))
    await item_links.mark_pending([staff_id], unknown_end)
    await item_links.save_link(
        await the_row(item_links, staff_id, unknown_end), linked(unknown_end), done=True
    )

    current = await item_links.current(staff_id, SINCE)

    assert sorted(r.item_key for r in current) == sorted([recent, old_but_changed, unknown_end])


async def test_rows_are_found_by_their_events(item_links: ItemLinks) -> None:
    staff_id = unique("U")
    keys = [f"appointment:{unique('A')}" for _ in range(20)]
    links = [await _settled(item_links, staff_id, key, SINCE) for key in keys]
    wanted = [link.event_id or "" for link in links[:16]]  # more than one query's worth

    found = await item_links.with_events(staff_id, [*wanted, "AAMkAG-no-such-event"])

    assert sorted(r.item_key for r in found) == sorted(keys[:16])
    assert await item_links.with_events(staff_id, []) == []


async def test_rows_written_since_a_round_and_failing_rows_are_read_alone(
    item_links: ItemLinks,
) -> None:
    staff_id = unique("U")
    before, after, ended, broken = (f"appointment:{unique('A')}" for _ in range(4))
    for key, mark, ends in (
        (before, "round-1", SINCE),
        (after, "round-2", SINCE),
        (ended, "round-2", SINCE - timedelta(days=2)),
    ):
        await item_links.mark_pending([staff_id], key, ends=ends)
        link = EventLink(item_key=key, event_id=unique("ev"), written_after=mark)
        await item_links.save_link(await the_row(item_links, staff_id, key), link, done=True)
    await item_links.mark_pending([staff_id], broken, ends=SINCE)
    await item_links.record_failure(await the_row(item_links, staff_id, broken), failing())

    since = await item_links.since_round(staff_id, "round-2", SINCE - timedelta(days=1))
    assert sorted(r.item_key for r in since) == sorted([after, broken]), "in the window, waiting"
    assert {r.ends for r in since} == {SINCE}, "each with its item's end"
    assert [r.item_key for r in await item_links.failing(staff_id)] == [broken]
