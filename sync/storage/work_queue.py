"""The `staff-sync` queue: requests to bring one staff member's calendars in step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sync.names import STAFF_SYNC_QUEUE
from sync.storage.account import StorageAccount, guarded
from sync.work import StaffSyncRequest, SyncReason

# Azure Storage's limit for a message's initial invisibility.
MAX_DELAY_SECONDS = 7 * 24 * 3600


class WorkQueue:
    def __init__(self, account: StorageAccount) -> None:
        self._queue = account.queue(STAFF_SYNC_QUEUE)

    async def request_sync(
        self,
        staff_ids: Iterable[str],
        reason: SyncReason,
        *,
        delay_seconds: float = 0,
        full: bool = False,
    ) -> None:
        delay = max(0, min(int(delay_seconds + 0.999), MAX_DELAY_SECONDS))

        async def send(staff_id: str) -> None:
            body = StaffSyncRequest(staff_id=staff_id, reason=reason, full=full)
            payload = body.model_dump_json().encode()
            await guarded(
                lambda: self._queue.send_message(payload, visibility_timeout=delay or None)
            )

        await asyncio.gather(*(send(staff_id) for staff_id in sorted(set(staff_ids))))
