"""The machine a run measured: CPU count, memory, Python, OS."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Machine:
    cpus: int
    memory_bytes: int | None
    python: str
    system: str
    when: datetime
    # Other work on the machine skews every figure: the 1-minute load average at the start.
    load: float | None

    @classmethod
    def current(cls) -> Machine:
        return cls(
            cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
            memory_bytes=_memory_bytes(),
            python=f"{platform.python_implementation()} {sys.version.split()[0]}",
            system=platform.platform(),
            when=datetime.now(UTC),
            load=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
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
        ]
