"""The `staff-sync` queue: requests to bring one staff member's calendars in step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from sync.concurrency import all_settled
from sync.names import STAFF_SYNC_QUEUE
from sync.staff_record import Roster
from sync.storage.account import StorageAccount, guarded
from sync.work import StaffSyncRequest, SyncReason

# Azure Storage's limit for a message's initial invisibility.
MAX_DELAY_SECONDS = 7 * 24 * 3600
SEND_CONCURRENCY = 64


class StorageWorkQueue:
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
        ids = sorted(set(staff_ids))
        await self._send_all([(staff_id, delay_seconds) for staff_id in ids], reason, full)

    async def send(self, request: StaffSyncRequest, *, delay_seconds: float = 0) -> None:
        """Queue one request as it is (ops actions, and work put back by the worker)."""
        delay = max(0, min(int(delay_seconds + 0.999), MAX_DELAY_SECONDS))
        payload = request.model_dump_json().encode()
        await guarded(lambda: self._queue.send_message(payload, visibility_timeout=delay or None))

    async def request_sync_spread(
        self,
        staff_ids: Iterable[str],
        reason: SyncReason,
        *,
        spread_seconds: float,
        rosters: Mapping[str, Roster] | None = None,
    ) -> None:
        """One request per staff member, their visibility spread evenly over `spread_seconds`."""
        ids = sorted(set(staff_ids))
        step = spread_seconds / len(ids) if ids else 0.0
        await self._send_all([(s, i * step) for i, s in enumerate(ids)], reason, False, rosters)

    async def _send_all(
        self,
        requests: list[tuple[str, float]],
        reason: SyncReason,
        full: bool,
        rosters: Mapping[str, Roster] | None = None,
    ) -> None:
        slots = asyncio.Semaphore(SEND_CONCURRENCY)
        entries = rosters or {}

        async def send(staff_id: str, delay_seconds: float) -> None:
            delay = max(0, min(int(delay_seconds + 0.999), MAX_DELAY_SECONDS))
            body = StaffSyncRequest(
                staff_id=staff_id, reason=reason, full=full, roster=entries.get(staff_id)
            )
            payload = body.model_dump_json().encode()
            async with slots:
                await guarded(
                    lambda: self._queue.send_message(payload, visibility_timeout=delay or None)
                )

        await all_settled(send(staff_id, delay) for staff_id, delay in requests)
