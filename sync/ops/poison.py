"""The poison queue: `staff-sync` messages that failed every attempt, listed and replayed.

A message holds staff ids, a reason and timestamps only, so listing it shows nothing personal.
Replaying sends a fresh request (attempt 0, reason "ops") to `staff-sync` for each staff member the
message names (one, or a fan-out batch's) and then deletes the poison message: a crash in between
replays twice, which the level-triggered worker shrugs off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from sync.names import STAFF_SYNC_POISON_QUEUE
from sync.ports import WorkQueue
from sync.storage.account import StorageAccount, guarded
from sync.work import StaffSyncRequest, parse_work, unpacked

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
    replayed: int
    staff_ids: list[str]
    left: int  # not matching the filter, or unreadable


def parse_requests(content: Any) -> list[StaffSyncRequest] | None:
    """The requests a poison message carries (a batch's, one each), or None if it holds
    something else."""
    try:
        return unpacked(parse_work(bytes(content)))
    except (ValidationError, TypeError, ValueError):
        return None


def describe(message: Any) -> PoisonMessage:
    requests = parse_requests(message.content) or []
    single = requests[0] if len(requests) == 1 else None
    first = requests[0] if requests else None
    return PoisonMessage(
        id=str(message.id),
        inserted_at=message.inserted_on,
        dequeue_count=message.dequeue_count,
        staff_id=single.staff_id if single else None,
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
        """Put poison messages (all, or one staff member's) back on `staff-sync`."""
        replayed: list[str] = []
        left: list[Any] = []
        while len(replayed) + len(left) < limit:
            batch = await self._receive()
            if not batch:
                break
            for message in batch:
                requests = parse_requests(message.content)
                if not requests or (
                    staff_id is not None and staff_id not in {r.staff_id for r in requests}
                ):
                    left.append(message)
                    continue
                for request in requests:
                    fresh = StaffSyncRequest(
                        staff_id=request.staff_id,
                        reason="ops",
                        full=request.full,
                        action=request.action,
                    )
                    await self._queue.send(fresh)
                await guarded(lambda m=message: self._poison.delete_message(m))  # type: ignore[misc]
                replayed += [r.staff_id for r in requests]
        for message in left:  # visible again for the next look
            await guarded(
                lambda m=message: self._poison.update_message(m, visibility_timeout=0)  # type: ignore[misc]
            )
        return ReplayOutcome(
            replayed=len(replayed), staff_ids=sorted(set(replayed)), left=len(left)
        )

    async def _receive(self) -> list[Any]:
        async def collect() -> list[Any]:
            pages = self._poison.receive_messages(
                messages_per_page=PAGE, max_messages=PAGE, visibility_timeout=HIDE_SECONDS
            )
            return [message async for message in pages]

        return await guarded(collect)
