"""`MemoryCoconut`: the roster, and busy blocks only for users on it."""

from __future__ import annotations

import pytest

from sync.coconut.api import UnknownCoconutUser
from sync.imports.busy_time import BusyBlock, external_id_for
from sync.memory.coconut import MemoryCoconut


async def test_coconut_knows_only_the_users_on_its_roster() -> None:
    coconut = MemoryCoconut()
    coconut.add_user("U-1", "kim@bank.example", calendar_sync=False)
    block = BusyBlock.model_validate(
        {
            "external_id": external_id_for("event-1"),
            "start": "2026-12-02T10:00:00Z",
            "end": "2026-12-02T11:00:00Z",
            "show_as": "tentative",
            "all_day": False,
        }
    )

    assert await coconut.put_busy_block("U-1", block) is True
    assert await coconut.put_busy_block("U-1", block) is False, "the second put replaces"
    with pytest.raises(UnknownCoconutUser):
        await coconut.busy_blocks("U-404")
    await coconut.delete_busy_block("U-404", block.external_id)  # nothing there: done

    assert (await coconut.busy_blocks("U-1"))[block.external_id] == block.coconut_data()
    [user] = await coconut.roster()
    assert (user.id, user.email, user.calendar_sync) == ("U-1", "kim@bank.example", False)
    assert coconut.requests == 6
