"""Outlook's per-app, per-mailbox limits: N requests per sliding window and 4 at a time."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from local.graph_emulator.errors import GraphError, throttled


@dataclass(frozen=True)
class ThrottleLimits:
    requests_per_window: int = 10_000
    window_seconds: float = 600.0
    concurrency: int = 4
    # Graph gives no useful wait for a concurrency refusal; a short one keeps clients moving.
    concurrency_retry_after: float = 1.0

    def to_json(self) -> dict[str, float | int]:
        return {
            "requestsPerWindow": self.requests_per_window,
            "windowSeconds": self.window_seconds,
            "concurrency": self.concurrency,
            "concurrencyRetryAfter": self.concurrency_retry_after,
        }


@dataclass
class MailboxThrottle:
    """Admits or refuses one request for a mailbox; thread-safe (control calls come from tests)."""

    limits: ThrottleLimits = field(default_factory=ThrottleLimits)
    clock: Callable[[], float] = time.monotonic
    _recent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, mailbox: str) -> None:
        """Take a concurrency slot and count the request, or raise a 429."""
        limits = self.limits
        with self._lock:
            now = self.clock()
            recent = self._recent[mailbox]
            while recent and recent[0] <= now - limits.window_seconds:
                recent.popleft()
            if len(recent) >= limits.requests_per_window:
                wait = recent[0] + limits.window_seconds - now
                raise throttled(
                    max(1, math.ceil(wait)), "Application is over its MailboxRequests limit."
                )
            if self._in_flight[mailbox] >= limits.concurrency:
                raise throttled(
                    limits.concurrency_retry_after,
                    "Application is over its MailboxConcurrency limit.",
                )
            recent.append(now)
            self._in_flight[mailbox] += 1

    def release(self, mailbox: str) -> None:
        with self._lock:
            self._in_flight[mailbox] = max(0, self._in_flight[mailbox] - 1)

    def configure(self, limits: ThrottleLimits) -> None:
        with self._lock:
            self.limits = limits

    def reset(self) -> None:
        with self._lock:
            self._recent.clear()
            self._in_flight.clear()


def is_throttle(error: GraphError) -> bool:
    return error.status == 429
