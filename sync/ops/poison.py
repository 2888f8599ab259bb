"""The poison queue: `staff-sync` messages that failed every attempt, listed and replayed.

A message holds staff ids, a reason and timestamps (a timer batch also the roster entry of a
staff member with no record yet: a work e-mail, which the listing does not show), so listing it
shows nothing personal. Replaying sends the work again (attempt 0, reason "ops"; a batch as one
batch) to `staff-sync` and then deletes the poison message: a crash in between replays twice,
which the level-triggered worker shrugs off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from sync.names import STAFF_SYNC_POISON_QUEUE
from sync.ports import WorkQueue
from sync.storage.account import StorageAccount, guarded
from sync.work import (
    STAFF_PER_MESSAGE,
    QueuedWork,
    StaffSyncBatch,
    StaffSyncRequest,
    parse_work,
    unpacked,
)

# Storage returns at most 32 messages per peek or receive.
PAGE: Final = 32
# Messages left alone by a filtered replay stay hidden this long while the rest is read.
HIDE_SECONDS: Final = 60


class PoisonMessage(BaseModel):
    id: str
    inserted_at: datetime | None
    dequeue_count: int | None
    # None when the body is not a request this service understands, or is a batch.
    staff_id: str | None
    # The staff members the message asks for (a batch names several; empty when unreadable).
    staff_ids: list[str]
    reason: str | None
    action: str | None
    full: bool | None


class PoisonListing(BaseModel):
    length: int  # approximate, as Storage reports it
    messages: list[PoisonMessage]  # the oldest ones, at most 32


class ReplayOutcome(BaseModel):
    replayed: int  # messages
    staff_ids: list[str]
    left: int  # not matching the filter, or unreadable


def parse_message(content: Any) -> QueuedWork | None:
    """The work a poison message holds, or None if it holds something else."""
    try:
        return parse_work(bytes(content))
    except (ValidationError, TypeError, ValueError):
        return None


def describe(message: Any) -> PoisonMessage:
    work = parse_message(message.content)
    requests = unpacked(work) if work is not None else []
    first = requests[0] if requests else None
    return PoisonMessage(
        id=str(message.id),
        inserted_at=message.inserted_on,
        dequeue_count=message.dequeue_count,
        staff_id=work.staff_id if isinstance(work, StaffSyncRequest) else None,
        staff_ids=[r.staff_id for r in requests],
        reason=first.reason if first else None,
        action=first.action if first else None,
        full=first.full if first else None,
    )


class PoisonQueue:
    def __init__(self, account: StorageAccount, queue: WorkQueue) -> None:
        self._poison = account.queue(STAFF_SYNC_POISON_QUEUE)
        self._queue = queue

    async def length(self) -> int:
        properties = await guarded(self._poison.get_queue_properties)
        return int(properties.approximate_message_count or 0)

    async def listing(self) -> PoisonListing:
        peeked = await guarded(lambda: self._poison.peek_messages(max_messages=PAGE))
        return PoisonListing(length=await self.length(), messages=[describe(m) for m in peeked])

    async def replay(self, staff_id: str | None = None, limit: int = 1000) -> ReplayOutcome:
        """Put poison messages (all, or those naming one staff member) back on `staff-sync`,
        as requests with reason "ops": a batch as a batch (one message, its roster entries
        kept), so `limit` counts messages either way."""
        replayed = 0
        staff_ids: set[str] = set()
        left: list[Any] = []
        while replayed + len(left) < limit:
            batch = await self._receive()
            if not batch:
                break
            for message in batch:
                work = parse_message(message.content)
                named = [r.staff_id for r in unpacked(work)] if work is not None else []
                if work is None or (staff_id is not None and staff_id not in named):
                    left.append(message)
                    continue
                await self._send_again(work)
                await guarded(lambda m=message: self._poison.delete_message(m))  # type: ignore[misc]
                replayed += 1
                staff_ids.update(named)
        for message in left:  # visible again for the next look
            await guarded(
                lambda m=message: self._poison.update_message(m, visibility_timeout=0)  # type: ignore[misc]
            )
        return ReplayOutcome(replayed=replayed, staff_ids=sorted(staff_ids), left=len(left))

    async def _send_again(self, work: QueuedWork) -> None:
        if isinstance(work, StaffSyncBatch):
            rosters = {r.staff_id: r.roster for r in work.requests() if r.roster is not None}
            await self._queue.request_sync_spread(
                [entry.staff_id for entry in work.staff],
                "ops",
                spread_seconds=0,
                rosters=rosters,
                per_message=STAFF_PER_MESSAGE,
            )
        else:
            fresh = StaffSyncRequest(
                staff_id=work.staff_id, reason="ops", full=work.full, action=work.action
            )
            await self._queue.send(fresh)

    async def _receive(self) -> list[Any]:
        async def collect() -> list[Any]:
            pages = self._poison.receive_messages(
                messages_per_page=PAGE, max_messages=PAGE, visibility_timeout=HIDE_SECONDS
            )
            return [message async for message in pages]

        return await guarded(collect)
