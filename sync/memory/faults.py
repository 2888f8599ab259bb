"""What can go wrong in the memory adapters: scheduled failures and a process crash."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sync.errors import Retryable


class Crash(Exception):
    """The process died: nothing of it runs further, not even `finally` work that writes, since
    every memory adapter refuses while `Faults.crashed` is set. Outside the error vocabulary
    (`sync.errors`), so the service never handles it."""


@dataclass
class Faults:
    """Shared by the adapters of one memory "process" (see `MemoryWorld`)."""

    crashed: bool = False
    # The process dies right after this many more Graph writes (0: no crash planned).
    crash_after_writes: int = 0
    # The same for Coconut's busy-block writes.
    crash_after_coconut_writes: int = 0
    # Failures the next requests to a service answer with, in order.
    scheduled: dict[str, deque[Retryable]] = field(default_factory=dict)

    def check(self, service: str) -> None:
        """Called at the start of every request to `service`."""
        if self.crashed:
            raise Crash(service)
        queued = self.scheduled.get(service)
        if queued:
            raise queued.popleft()

    def fail_next(self, service: str, *failures: Retryable) -> None:
        self.scheduled.setdefault(service, deque()).extend(failures)

    def crash(self) -> None:
        self.crashed = True

    def written(self, counter: str) -> None:
        """A write landed: the process dies now if `counter` (the name of a `crash_after_*`
        field) runs out."""
        left = getattr(self, counter)
        if left > 0:
            setattr(self, counter, left - 1)
            if left == 1:
                self.crash()
                raise Crash(f"after a write ({counter})")

    def restart(self) -> None:
        """A new process: requests work again (leases the dead one held stay until they end)."""
        self.crashed = False
        self.crash_after_writes = 0
        self.crash_after_coconut_writes = 0
        self.scheduled.clear()
