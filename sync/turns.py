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

# Requests whose only work is the rows already marked pending: any waiting plain sync does it.
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
    # The requests the waiting run covers, handed to it when its turn comes.
    covered: list[StaffSyncRequest] = field(default_factory=list)


class LocalTurns:
    """The staff members this process runs or has runs waiting for, one lock each (kept only
    while someone holds or waits for it)."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}

    def covered(self, request: StaffSyncRequest) -> bool:
        """Whether a waiting run of this process covers the request (see the module
        docstring); if so, that run answers for it (`turn` hands it over)."""
        turn = self._turns.get(request.staff_id)
        if turn is None or turn.waiting is None or not covers(turn.waiting, request):
            return False
        turn.covered.append(request)
        return True

    @asynccontextmanager
    async def turn(self, request: StaffSyncRequest) -> AsyncIterator[list[StaffSyncRequest]]:
        """Held while the request runs; waits while another run of this staff member does.
        Yields the requests its run covers (asked for while it waited)."""
        turn = self._turns.setdefault(request.staff_id, _Turn())
        turn.users += 1
        queued = turn.lock.locked() and turn.waiting is None
        if queued:
            turn.waiting = request
        try:
            async with turn.lock:
                covered: list[StaffSyncRequest] = []
                if turn.waiting is request:
                    turn.waiting, covered, turn.covered = None, turn.covered, []
                yield covered
        finally:
            if turn.waiting is request:  # cancelled while waiting: its message comes back
                turn.waiting, turn.covered = None, []
            turn.users -= 1
            if turn.users == 0:
                del self._turns[request.staff_id]
