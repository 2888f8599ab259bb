"""Runs for the same staff member in one process take turns, before any of them asks storage.

Without this, a request arriving while this process already runs that staff member finds the
lease held and asks the holder for another pass through storage: a failed swap, two reads, a
write and a wake-up message, then the holder's extra pass. Here it waits its turn in memory
instead, and the lease, taken when its turn comes, is a single write (the record as the last
run gave it back). Requests for other processes' runs still meet the lease (`sync.lease`).

While one request waits, a later plain request for the same staff member is already covered:
every change is marked in storage before its request is sent, and the waiting run reads the
marks only when its turn comes. So the later one is answered at once, with no run at all.

A burst of bookings for one staff member (a morning rush, a branch's day planned at once) would
still make a run per change, each paying for the lease, the row query and the status write. So a
plain request that comes within `FOLD_WINDOW` of this process's last run for the staff member
waits `FOLD_DELAY` before its own, covering what arrives meanwhile: several changes per run in a
burst, at the cost of a tenth of a second, and nothing at all for a change on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

from sync.work import StaffSyncRequest

# Requests that only write pending rows: a waiting run of any plain sync does what they ask.
_COVERABLE: Final = frozenset({"webhook", "retry"})
# A plain request this soon after the staff member's last run here waits this long first.
FOLD_WINDOW: Final = 1.0
FOLD_DELAY: Final = 0.25
# Staff whose last run's end is remembered (the oldest forgotten first).
ENDS_KEPT: Final = 10_000


def is_plain(request: StaffSyncRequest) -> bool:
    """A request that asks for no more than the pending rows written."""
    return (
        request.action == "sync"
        and not request.full
        and request.roster is None
        and request.reason in _COVERABLE
    )


def covers(waiting: StaffSyncRequest, request: StaffSyncRequest) -> bool:
    """Whether the waiting run does everything `request` asks for."""
    return (
        is_plain(request)
        and waiting.action == "sync"
        and waiting.reason != "reconcile"  # its pass may stop after the listings
    )


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # running or waiting
    waiting: StaffSyncRequest | None = None


class LocalTurns:
    def __init__(self, fold_delay: float = FOLD_DELAY) -> None:
        self._turns: dict[str, _Turn] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()
        self._fold_delay = fold_delay

    def covered(self, request: StaffSyncRequest) -> bool:
        """A request a waiting run of this process covers (see the module docstring)."""
        turn = self._turns.get(request.staff_id)
        return turn is not None and turn.waiting is not None and covers(turn.waiting, request)

    @asynccontextmanager
    async def turn(self, request: StaffSyncRequest) -> AsyncIterator[None]:
        """Held while the request runs; waits while another run of this staff member does
        (or, in a burst, `FOLD_DELAY`)."""
        staff_id = request.staff_id
        turn = self._turns.setdefault(staff_id, _Turn())
        turn.users += 1
        busy = turn.lock.locked()
        fold = not busy and is_plain(request) and self._ran_lately(staff_id)
        if (busy or fold) and turn.waiting is None:
            turn.waiting = request
        try:
            async with turn.lock:
                if fold:
                    await asyncio.sleep(self._fold_delay)
                if turn.waiting is request:
                    turn.waiting = None
                try:
                    yield
                finally:
                    self._ended[staff_id] = time.monotonic()
                    self._ended.move_to_end(staff_id)
                    while len(self._ended) > ENDS_KEPT:
                        self._ended.popitem(last=False)
        finally:
            if turn.waiting is request:  # cancelled while waiting
                turn.waiting = None
            turn.users -= 1
            if turn.users == 0:
                del self._turns[staff_id]

    def _ran_lately(self, staff_id: str) -> bool:
        ended = self._ended.get(staff_id)
        return ended is not None and time.monotonic() - ended < FOLD_WINDOW
