"""`ItemTable`: the desired state of each Coconut item, replaced only by ETag compare-and-swap.

Two deliveries of one appointment race to record it; the swap is what keeps a lower revision
from overwriting a higher one (`sync.desired_items`), so a lost swap must answer False, never
write, and never raise.
"""

from __future__ import annotations

from sync.desired_state import DesiredItem, decide
from sync.ports import ItemTable
from tests.contract.adapters import unique
from tests.sync.payloads import appointment_at, appointment_deleted_at


def appointment(
    coconut_id: str, revision: int, notes: str = "Brings two pieces of ID."
) -> DesiredItem:
    record = decide(
        None, appointment_at(revision, ("U-1", "U-2"), coconut_id=coconut_id, notes=notes)
    ).record
    assert record is not None
    return record


async def test_an_item_never_recorded_reads_as_absent(item_table: ItemTable) -> None:
    assert await item_table.read(f"appointment:{unique('A')}") == (None, None)


async def test_a_create_round_trips_the_item_whole(item_table: ItemTable) -> None:
    item = appointment(unique("A"), 3)

    assert await item_table.swap(item, None)

    read, etag = await item_table.read(item.key)
    assert read == item
    assert etag


async def test_a_second_create_loses(item_table: ItemTable) -> None:
    """Two first deliveries of one item: only one creates it."""
    first = appointment(unique("A"), 3)
    await item_table.swap(first, None)

    assert not await item_table.swap(appointment(first.coconut_id, 4), None)

    assert (await item_table.read(first.key))[0] == first


async def test_a_swap_against_the_current_etag_replaces(item_table: ItemTable) -> None:
    first = appointment(unique("A"), 3)
    await item_table.swap(first, None)
    _, etag = await item_table.read(first.key)
    newer = appointment(first.coconut_id, 4, notes="Moved to the afternoon.")

    assert await item_table.swap(newer, etag)

    read, new_etag = await item_table.read(first.key)
    assert read == newer
    assert new_etag != etag


async def test_a_swap_against_a_stale_etag_loses_and_writes_nothing(item_table: ItemTable) -> None:
    first = appointment(unique("A"), 3)
    await item_table.swap(first, None)
    _, stale = await item_table.read(first.key)
    winner = appointment(first.coconut_id, 5)
    assert await item_table.swap(winner, stale)

    assert not await item_table.swap(appointment(first.coconut_id, 4), stale)

    assert (await item_table.read(first.key))[0] == winner


async def test_a_tombstone_round_trips(item_table: ItemTable) -> None:
    """A deletion is final: its record (no resource, the revision kept) must read back so."""
    live = appointment(unique("A"), 3)
    await item_table.swap(live, None)
    _, etag = await item_table.read(live.key)
    tombstone = decide(live, appointment_deleted_at(4, coconut_id=live.coconut_id)).record
    assert tombstone is not None

    assert await item_table.swap(tombstone, etag)

    read, _ = await item_table.read(live.key)
    assert read == tombstone
    assert read is not None
    assert read.deleted
    assert read.resource is None


async def test_a_swap_against_an_item_no_longer_there_loses(item_table: ItemTable) -> None:
    """An ETag of a row that is gone (removed by hand) matches nothing: a lost race, answered
    False, not a storage error outside the service's vocabulary."""
    item = appointment(unique("A"), 3)

    assert not await item_table.swap(item, "W/\"datetime'2026-01-01T00%3A00%3A00.0000000Z'\"")

    assert await item_table.read(item.key) == (None, None)
