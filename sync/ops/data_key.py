"""Finishing a data key rotation: every record's content sealed under `SYNC_DATA_KEY`.

A rotation (docs/operations.md): the old key moves to `SYNC_DATA_KEY_PREVIOUS`, a new one becomes
`SYNC_DATA_KEY`. From then on every write seals under the new key and every read re-seals what it
finds under the old one, so records that are touched move over by themselves. This command moves
the rest: it reads each record whose content is under another key (or from before encryption),
which re-seals it, and reports what is left. Once nothing is left, `SYNC_DATA_KEY_PREVIOUS` can be
removed.

One call works for at most `budget_seconds` (an HTTP answer must come within 230 s); the command
line calls again until the rotation is complete. A record neither key opens is listed by item
key and left as it is: the item's next change from Coconut replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from pydantic import BaseModel

from sync.concurrency import all_settled
from sync.errors import ContentUnreadable
from sync.ports import ItemTable, StoredItem

log = logging.getLogger("sync.ops")

# Within the ops client's 60 s timeout (and the front end's 230 s).
DEFAULT_BUDGET_SECONDS: Final = 40.0
CONCURRENCY: Final = 16
# Item keys of unreadable records named in one answer.
MAX_LISTED: Final = 100


class RotationReport(BaseModel):
    key_id: str  # the id of SYNC_DATA_KEY, for the operator to compare
    # Records that moved to the current key during this call.
    resealed: int
    # Records under another key still, after this call (unreadable ones included).
    remaining: int
    unreadable: list[str]
    complete: bool


class DataKeyRotation:
    def __init__(self, table: ItemTable, current_key_id: str) -> None:
        self._table = table
        self._key_id = current_key_id

    async def finish(self, budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> RotationReport:
        deadline = time.monotonic() + budget_seconds
        stale = [stored for stored in await self._table.scan() if stored.stale_key]
        slots = asyncio.Semaphore(CONCURRENCY)
        unreadable: list[str] = []

        async def reseal(stored: StoredItem) -> None:
            async with slots:
                if time.monotonic() > deadline:
                    return
                try:
                    await self._table.read(stored.item.key)  # a read re-seals under the new key
                except ContentUnreadable:
                    unreadable.append(stored.item.key)

        await all_settled(reseal(stored) for stored in stale)
        remaining = sum(1 for stored in await self._table.scan() if stored.stale_key)
        resealed = max(0, len(stale) - remaining)
        report = RotationReport(
            key_id=self._key_id,
            resealed=resealed,
            remaining=remaining,
            unreadable=sorted(unreadable)[:MAX_LISTED],
            complete=remaining == 0,
        )
        log.info(
            "data key rotation",
            extra={
                "operation": "ops_rotate_data_key",
                "outcome": "complete" if report.complete else "in_progress",
                "resealed": resealed,
                "remaining": remaining,
                "unreadable": len(unreadable),
            },
        )
        return report
