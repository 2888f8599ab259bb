"""The `staff-sync` queue: requests to bring one staff member's calendars in step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from sync.concurrency import all_settled
from sync.names import STAFF_SYNC_QUEUE
from sync.staff_record import Roster
from sync.storage.account import StorageAccount, guarded
from sync.storage.lean_clients import random_request_id
from sync.work import QueuedWork, StaffSyncRequest, SyncReason, fan_out

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
        await self._put(request.model_dump_json().encode(), delay_seconds)

    async def request_sync_spread(
        self,
        staff_ids: Iterable[str],
        reason: SyncReason,
        *,
        spread_seconds: float,
        rosters: Mapping[str, Roster] | None = None,
        per_message: int = 1,
    ) -> None:
        """The messages of `sync.work.fan_out`, their visibility spread evenly over
        `spread_seconds`."""
        work = fan_out(staff_ids, reason, rosters, per_message=per_message)
        step = spread_seconds / len(work) if work else 0.0
        slots = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(message: QueuedWork, delay_seconds: float) -> None:
            async with slots:
                await self._put(message.model_dump_json().encode(), delay_seconds)

        await all_settled(send(message, i * step) for i, message in enumerate(work))

    async def _send_all(
        self, requests: list[tuple[str, float]], reason: SyncReason, full: bool
    ) -> None:
        slots = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(staff_id: str, delay_seconds: float) -> None:
            body = StaffSyncRequest(staff_id=staff_id, reason=reason, full=full)
            async with slots:
                await self._put(body.model_dump_json().encode(), delay_seconds)

        await all_settled(send(staff_id, delay) for staff_id, delay in requests)

    async def _put(self, payload: bytes, delay_seconds: float) -> None:
        # Queue Storage's delays are whole seconds: rounded up, never early.
        delay = max(0, min(int(delay_seconds + 0.999), MAX_DELAY_SECONDS))
        await guarded(
            lambda: self._queue.send_message(
                payload, visibility_timeout=delay or None, client_request_id=random_request_id()
            )
        )
