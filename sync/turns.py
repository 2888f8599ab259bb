"""Runs for the same staff member in one process take turns, before any of them asks storage.

Without this, a request arriving while this process already runs that staff member finds the
lease held and asks the holder for another pass through storage: a failed swap, two reads, a
write and a wake-up message, then the holder's extra pass. Here it waits its turn in memory
instead, and the lease, taken when its turn comes, is a single write (the record as the last
run gave it back). Requests for other processes' runs still meet the lease (`sync.lease`).

While one request waits, a later plain request for the same staff member is already covered:
every change is marked in storage before its request is sent, and the waiting run reads the
marks only when its turn comes. So the later one is answered at once, with no run at all.

For the same reason, a run that starts a pass while a plain request already waits (and with it
the requests it covers) has read their marks with its rows: when that pass ends synced, the
waiting run has nothing left to do, and gives its turn up at once (`Turn.answered`). A request
that arrives after the pass began is not answered by it, so the waiting run still runs for it.
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


def _plain(request: StaffSyncRequest) -> bool:
    """A request whose only work is the rows marked pending before it was sent."""
    return (
        request.action == "sync"
        and not request.full
        and request.roster is None
        and request.reason in _COVERABLE
    )


def covers(waiting: StaffSyncRequest, request: StaffSyncRequest) -> bool:
    """Whether the waiting run does everything `request` asks for."""
    return (
        _plain(request)
        and waiting.action == "sync"
        and waiting.reason != "reconcile"  # its pass may stop after the listings
    )


@dataclass(frozen=True)
class Sighting:
    """Who waited when a pass began: the waiting request and how many it covered then."""

    waiting: StaffSyncRequest
    covering: int


@dataclass(frozen=True)
class Turn:
    """A request's turn: the requests its run answers for (asked for while it waited), and
    whether the run before it answered them all already (then there is nothing to do)."""

    covered: list[StaffSyncRequest]
    answered: bool = False


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # running or waiting
    waiting: StaffSyncRequest | None = None
    # The requests the waiting run covers, handed to it when its turn comes.
    covered: list[StaffSyncRequest] = field(default_factory=list)
    # What a synced pass that began while they waited answered for (`LocalTurns.answer`).
    answered: Sighting | None = None


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

    def sighting(self, staff_id: str) -> Sighting | None:
        """Who waits for a turn of this staff member now (taken as a pass begins)."""
        turn = self._turns.get(staff_id)
        if turn is None or turn.waiting is None or not _plain(turn.waiting):
            return None
        return Sighting(turn.waiting, len(turn.covered))

    def answer(self, runner: StaffSyncRequest, sighting: Sighting | None) -> None:
        """`runner`'s pass, begun at `sighting`, ended synced: it read and wrote the rows the
        requests waiting then were sent for, so their run has nothing left to do."""
        turn = self._turns.get(runner.staff_id)
        if sighting is None or turn is None or runner.action != "sync":
            return
        if turn.waiting is sighting.waiting:
            turn.answered = sighting

    @asynccontextmanager
    async def turn(self, request: StaffSyncRequest) -> AsyncIterator[Turn]:
        """Held while the request runs; waits while another run of this staff member does."""
        turn = self._turns.setdefault(request.staff_id, _Turn())
        turn.users += 1
        queued = turn.lock.locked() and turn.waiting is None
        if queued:
            turn.waiting = request
        try:
            async with turn.lock:
                given = Turn([])
                if turn.waiting is request:
                    answered = turn.answered
                    given = Turn(
                        turn.covered,
                        # Nothing covered since the pass that answered began.
                        answered is not None
                        and answered.waiting is request
                        and answered.covering == len(turn.covered),
                    )
                    turn.waiting, turn.covered, turn.answered = None, [], None
                yield given
        finally:
            if turn.waiting is request:  # cancelled while waiting: its message comes back
                turn.waiting, turn.covered, turn.answered = None, [], None
            turn.users -= 1
            if turn.users == 0:
                del self._turns[request.staff_id]
