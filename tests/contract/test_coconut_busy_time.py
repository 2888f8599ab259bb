"""`CoconutBusyTime` and `CoconutRoster`: the busy blocks the import keeps in Coconut, and the
roster the cycle reads.

The import compares `busy_blocks` with what Exchange holds and writes the difference, so a block
must list back exactly as Coconut lists it; a removal that finds nothing is done (it may have
been removed already); a user Coconut does not know is a reason to show, not a retry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.coconut.api import UnknownCoconutUser
from sync.imports.busy_time import BusyBlock, external_id_for
from tests.contract.adapters import CoconutSide, unique

START = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def block(event_id: str, hours: int = 1, **changes: object) -> BusyBlock:
    fields: dict[str, object] = {
        "external_id": external_id_for(event_id),
        "start": START,
        "end": START + timedelta(hours=hours),
        "all_day": False,
        "show_as": "busy",
        **changes,
    }
    return BusyBlock.model_validate(fields)


def staff_member(coconut: CoconutSide) -> str:
    user_id = unique("U")
    coconut.add_user(user_id, f"{user_id.lower()}@bank.example")
    return user_id


async def test_a_new_staff_member_holds_no_blocks(coconut: CoconutSide) -> None:
    assert await coconut.busy_time.busy_blocks(staff_member(coconut)) == {}


async def test_a_put_creates_then_replaces(coconut: CoconutSide) -> None:
    user_id = staff_member(coconut)
    first = block("event-1")
    moved = block("event-1", hours=2, show_as="oof")

    assert await coconut.busy_time.put_busy_block(user_id, first) is True
    assert await coconut.busy_time.put_busy_block(user_id, moved) is False

    assert await coconut.busy_time.busy_blocks(user_id) == {moved.external_id: moved.coconut_data()}


async def test_blocks_list_back_as_coconut_lists_them(coconut: CoconutSide) -> None:
    user_id = staff_member(coconut)
    blocks = [
        block("event-1"),
        block("event-2", show_as="tentative"),
        block(
            "event-3",
            start=datetime(2026, 12, 24, 5, tzinfo=UTC),
            end=datetime(2026, 12, 25, 5, tzinfo=UTC),
            all_day=True,
        ),
    ]
    for each in blocks:
        await coconut.busy_time.put_busy_block(user_id, each)

    listed = await coconut.busy_time.busy_blocks(user_id)

    assert listed == {each.external_id: each.coconut_data() for each in blocks}
    assert listed[blocks[0].external_id] == {
        "type": "external-events",
        "id": blocks[0].external_id,
        "attributes": {
            "title": "Busy",
            "start": "2026-12-02T15:00:00Z",
            "end": "2026-12-02T16:00:00Z",
            "all_day": False,
            "show_as": "busy",
        },
    }


async def test_blocks_are_kept_per_staff_member(coconut: CoconutSide) -> None:
    kim, sam = staff_member(coconut), staff_member(coconut)

    await coconut.busy_time.put_busy_block(kim, block("event-1"))

    assert await coconut.busy_time.busy_blocks(sam) == {}
    assert list(await coconut.busy_time.busy_blocks(kim)) == [block("event-1").external_id]


async def test_a_delete_removes_the_block(coconut: CoconutSide) -> None:
    user_id = staff_member(coconut)
    kept, removed = block("event-1"), block("event-2")
    for each in (kept, removed):
        await coconut.busy_time.put_busy_block(user_id, each)

    await coconut.busy_time.delete_busy_block(user_id, removed.external_id)

    assert list(await coconut.busy_time.busy_blocks(user_id)) == [kept.external_id]


async def test_a_delete_of_a_block_not_there_is_done(coconut: CoconutSide) -> None:
    user_id = staff_member(coconut)
    await coconut.busy_time.put_busy_block(user_id, block("event-1"))
    await coconut.busy_time.delete_busy_block(user_id, block("event-1").external_id)

    await coconut.busy_time.delete_busy_block(user_id, block("event-1").external_id)
    await coconut.busy_time.delete_busy_block(user_id, block("never-put").external_id)

    assert await coconut.busy_time.busy_blocks(user_id) == {}


async def test_an_unknown_user_is_refused(coconut: CoconutSide) -> None:
    stranger = unique("U")

    with pytest.raises(UnknownCoconutUser):
        await coconut.busy_time.busy_blocks(stranger)
    with pytest.raises(UnknownCoconutUser):
        await coconut.busy_time.put_busy_block(stranger, block("event-1"))
    # A removal for a user who is gone is done: the block went with them.
    await coconut.busy_time.delete_busy_block(stranger, block("event-1").external_id)


async def test_the_roster_lists_each_staff_member_with_calendar_sync(
    coconut: CoconutSide,
) -> None:
    on, off = unique("U"), unique("U")
    coconut.add_user(on, "on@bank.example", calendar_sync=True)
    coconut.add_user(off, "off@bank.example", calendar_sync=False)

    listed = {u.id: (u.email, u.calendar_sync) for u in await coconut.roster.roster()}

    assert listed[on] == ("on@bank.example", True)
    assert listed[off] == ("off@bank.example", False)
