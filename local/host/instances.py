"""Flex Consumption's per-function scaling, on one machine: HTTP apart from the triggers.

On Flex Consumption the HTTP functions scale together on instances of their own, and each other
function (every timer and queue trigger) on its own instances: webhook intake never waits behind
the queue worker's CPU. The local host does the same with two processes. The one started by
`python -m local.host` serves the HTTP functions and starts a second one (`--triggers-only`) that
runs the timer and queue triggers; `/api/health` answers 200 once both run. Stopping the host
stops both; if either dies, so does the other (a crashed host loses its instances).

One machine is not two instances: left to itself, the queue worker draining a backlog takes the
CPU webhook intake needs, which on Flex Consumption runs elsewhere. The trigger process therefore
runs at a lower CPU priority (`TRIGGER_NICENESS`): intake is served first and the drain gets
the rest, as the separate instances would have it.

`--single-process` runs everything in one process, as the host did before, for debugging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from local.host.runtime import HostRuntime

log = logging.getLogger("local.host")

# How much lower the trigger process's CPU priority is than the HTTP process's (`nice`).
TRIGGER_NICENESS = 10
# How often the trigger process checks that the host that started it is still there.
PARENT_CHECK_SECONDS = 0.25


class TriggerProcess:
    """The child process running the timer and queue triggers."""

    def __init__(self, script_root: Path, queue_lease: float, ready_file: Path) -> None:
        self._script_root = script_root
        self._queue_lease = queue_lease
        self._ready_file = ready_file
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._ready_file.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.host",
                "--triggers-only",
                "--ready-file",
                str(self._ready_file),
                "--script-root",
                str(self._script_root),
                "--queue-lease",
                str(self._queue_lease),
            ],
            cwd=self._script_root,
        )  # output goes where the host's goes

    @property
    def ready(self) -> bool:
        """Its triggers run (it wrote the ready file) and it has not exited since."""
        return self.exit_code is None and self._ready_file.exists()

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self, timeout: float = 30.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._ready_file.unlink(missing_ok=True)


async def run_triggers(runtime: HostRuntime, ready_file: Path) -> None:
    """The trigger process: run the triggers until SIGTERM/SIGINT, or until the host that
    started it is gone."""
    parent = os.getppid()
    os.nice(TRIGGER_NICENESS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stop.set)
    await runtime.start()
    await asyncio.to_thread(ready_file.write_text, str(os.getpid()))
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            # The host died without stopping us: an instance does not outlive its host.
            log.error("the host process is gone; the trigger process stops too")
            os._exit(1)
    await runtime.stop()
