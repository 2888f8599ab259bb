"""The machine a run measured: CPU count, memory, Python, OS, and how fast one of its CPUs runs
Python (a fixed loop), so that figures from two machines, or one machine on two days, can be
told apart from a change of the code."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

# The reference loop's size: big enough to time, small enough to leave out of the figures.
_REFERENCE_ITERATIONS = 1_000_000


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def reference_loop_seconds(repeats: int = 5) -> float:
    """CPU seconds of a fixed pure-Python loop (median of `repeats`): the service's host is
    Python, so its CPU figures scale with this one."""
    timings = []
    for _ in range(repeats):
        started = time.process_time()
        total = 0
        for number in range(_REFERENCE_ITERATIONS):
            total += number * number % 7
        timings.append(time.process_time() - started)
    return statistics.median(timings)


@dataclass(frozen=True)
class Machine:
    cpus: int
    memory_bytes: int | None
    python: str
    system: str
    when: datetime
    # Other work on the machine skews every figure: the 1-minute load average at the start.
    load: float | None
    reference_seconds: float

    @classmethod
    def current(cls) -> Machine:
        return cls(
            cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
            memory_bytes=_memory_bytes(),
            python=f"{platform.python_implementation()} {sys.version.split()[0]}",
            system=platform.platform(),
            when=datetime.now(UTC),
            load=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            reference_seconds=reference_loop_seconds(),
        )

    def rows(self) -> list[tuple[str, str]]:
        memory = (
            f"{self.memory_bytes / 2**30:.1f} GiB" if self.memory_bytes is not None else "unknown"
        )
        return [
            ("CPUs available", str(self.cpus or os.cpu_count() or "unknown")),
            ("memory", memory),
            ("Python", self.python),
            ("OS", self.system),
            ("measured at", self.when.strftime("%Y-%m-%d %H:%M UTC")),
            (
                "load average (1 min) at start",
                "unknown" if self.load is None else f"{self.load:.2f}",
            ),
            (
                "reference Python loop (CPU time, median of 5; lower is faster)",
                f"{self.reference_seconds * 1000:.0f} ms",
            ),
        ]
