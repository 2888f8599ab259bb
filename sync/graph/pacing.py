"""Sending to a mailbox at the rate Graph allows, instead of bouncing off its limit.

Outlook counts each app's requests per mailbox over a sliding window: 10,000 per 10 minutes
(graph/FACTS.md, "Throttling"). A request over it is answered 429, and a refused create leaves
its item to be looked up before it is posted again: throttling costs more requests than it
saves. So this process keeps its own count of each mailbox's recent requests and holds a
request back until the window has room for it.

The count is taken when the answer comes back, which is after Graph counted the request: the
process never thinks a slot is free before Graph does. Requests still on their way count too.
A request Graph refused with 429 is not counted (Graph did not take it). The staff lease keeps
a mailbox on one process at a time; a mailbox that moved between processes may still meet a
429, and then its `Retry-After` is obeyed (`sync.graph.calls`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# Outlook's documented per-app, per-mailbox limit (graph/throttling-limits).
GRAPH_MAILBOX_REQUESTS: Final = 10_000
GRAPH_MAILBOX_WINDOW_SECONDS: Final = 600.0
# How soon to look again when only answers on their way can make room.
ANSWER_POLL_SECONDS: Final = 0.05


@dataclass(frozen=True)
class MailboxRate:
    """At most `requests` per `window_seconds` (a sliding window) for one mailbox."""

    requests: int = GRAPH_MAILBOX_REQUESTS
    window_seconds: float = GRAPH_MAILBOX_WINDOW_SECONDS


@dataclass
class _Window:
    answered: deque[float] = field(default_factory=deque)  # when each answer came back
    in_flight: int = 0


class MailboxPacer:
    """This process's requests per mailbox over the last window. Not thread-safe: one event
    loop owns it, and no await comes between `room_in` and `sending`."""

    def __init__(self, rate: MailboxRate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def room_in(self, mailbox: str) -> float:
        """Seconds until one more request to `mailbox` fits in the window (0: now)."""
        window = self._windows.get(mailbox)
        if window is None:
            return 0.0
        now = self._clock()
        self._forget_before(window, now - self.rate.window_seconds)
        over = len(window.answered) + window.in_flight - self.rate.requests
        if over < 0:
            return 0.0
        if over >= len(window.answered):
            # Only answers still to come would free a slot: look again shortly.
            return min(ANSWER_POLL_SECONDS, self.rate.window_seconds)
        return window.answered[over] + self.rate.window_seconds - now

    def sending(self, mailbox: str) -> None:
        """A request to `mailbox` goes out now."""
        self._windows.setdefault(mailbox, _Window()).in_flight += 1

    def answered(self, mailbox: str, *, counted: bool) -> None:
        """Its answer came back (or none will); `counted=False` when Graph refused it (429)."""
        window = self._windows[mailbox]
        window.in_flight -= 1
        now = self._clock()
        if counted:
            window.answered.append(now)
        self._forget_before(window, now - self.rate.window_seconds)
        if not window.answered and not window.in_flight:
            del self._windows[mailbox]  # an idle mailbox costs nothing

    @staticmethod
    def _forget_before(window: _Window, start: float) -> None:
        while window.answered and window.answered[0] <= start:
            window.answered.popleft()
