"""Runs for the same staff member in one process take turns, before any of them asks storage.

Without this, a request arriving while this process already runs that staff member finds the
lease held and asks the holder for another pass through storage: a failed swap, two reads, a
write and a wake-up message, then the holder's extra pass. Here it waits its turn in memory
instead, and the lease, taken when its turn comes, is a single write (the record as the last
run gave it back). Requests for other processes' runs still meet the lease (`sync.lease`).

While one request waits, a later plain request for the same staff member is already covered:
every change is marked in storage before its request is sent, and the waiting run reads the
marks only when its turn comes. So the later one is answered at once, with no run at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

from sync.work import StaffSyncRequest

# Requests that only write pending rows: a waiting run of any plain sync does what they ask.
_COVERABLE: Final = frozenset({"webhook", "retry"})


def covers(waiting: StaffSyncRequest, request: StaffSyncRequest) -> bool:
    """Whether the waiting run does everything `request` asks for."""
    plain = request.action == "sync" and not request.full and request.roster is None
    return (
        plain
        and request.reason in _COVERABLE
        and waiting.action == "sync"
        and waiting.reason != "reconcile"  # its pass may stop after the listings
    )


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # running or waiting
    waiting: StaffSyncRequest | None = None


class LocalTurns:
    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}

    def covered(self, request: StaffSyncRequest) -> bool:
        """A request a waiting run of this process covers (see the module docstring)."""
        turn = self._turns.get(request.staff_id)
        return turn is not None and turn.waiting is not None and covers(turn.waiting, request)

    @asynccontextmanager
    async def turn(self, request: StaffSyncRequest) -> AsyncIterator[None]:
        """Held while the request runs; waits while another run of this staff member does."""
        turn = self._turns.setdefault(request.staff_id, _Turn())
        turn.users += 1
        queued = turn.lock.locked() and turn.waiting is None
        if queued:
            turn.waiting = request
        try:
            async with turn.lock:
                if turn.waiting is request:
                    turn.waiting = None
                yield
        finally:
            if turn.waiting is request:  # cancelled while waiting
                turn.waiting = None
            turn.users -= 1
            if turn.users == 0:
                del self._turns[request.staff_id]
