"""When the service has finished: the work queue holds nothing, visible or in flight."""

from __future__ import annotations

import asyncio
import time

from benchmarks.stacks import queued_messages
from local.azurite import Azurite
from sync.names import STAFF_SYNC_QUEUE


async def queue_drained(azurite: Azurite, within: float = 120.0, quiet: float = 0.3) -> None:
    """Wait until the queue stays empty for `quiet` seconds (a run may enqueue a follow-up)."""
    deadline = time.monotonic() + within
    empty_since: float | None = None
    while time.monotonic() < deadline:
        if await queued_messages(azurite, STAFF_SYNC_QUEUE) == 0:
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since >= quiet:
                return
        else:
            empty_since = None
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the work queue did not drain within {within:.0f} s")
