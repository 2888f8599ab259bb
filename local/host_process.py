"""Start `python -m local.host` as a child process (for the demo, tests and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from local.azurite import REPO_ROOT, free_port


@dataclass
class HostProcess:
    """The local Functions host running a function app from `script_root`."""

    env: Mapping[str, str]
    script_root: Path = REPO_ROOT
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    extra_args: tuple[str, ...] = ()
    _process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> HostProcess:
        environment = {**os.environ, **self.env}
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), environment.get("PYTHONPATH", "")) if p
        )
        # The host's output, stderr included, goes to the log or nowhere: a pipe nobody reads
        # would block a chatty host once full. The child keeps its own handle on the log; the
        # parent's is closed once it has started.
        with contextlib.ExitStack() as stack:
            output: IO[bytes] | int = (
                stack.enter_context(open(self.log_path, "ab"))
                if self.log_path
                else subprocess.DEVNULL
            )
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local.host",
                    "--port",
                    str(self.port),
                    "--script-root",
                    str(self.script_root),
                    *self.extra_args,
                ],
                cwd=self.script_root,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                # A group of its own: a kill takes the host's trigger process with it at once.
                start_new_session=True,
            )
        self.wait_healthy(timeout)
        return self

    @property
    def pid(self) -> int | None:
        """The host process's id while it runs."""
        return self._process.pid if self._process is not None else None

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the host and the processes it started (its trigger
        process), from Linux `/proc`."""
        if self.pid is None:
            return 0.0
        return sum(_cpu_seconds(pid) for pid in process_tree(self.pid))

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"local host exited with code {self._process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("local host did not become healthy")

    def stop(self, timeout: float = 30.0) -> int:
        """Stop with SIGTERM as an operator would; the exit code."""
        if self._process is None:
            return 0
        self._process.send_signal(signal.SIGTERM)
        try:
            code = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait()
        self._process = None
        return code

    def kill(self) -> None:
        """Kill without warning (a crash), with every process the host started."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None

    def __enter__(self) -> HostProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, as `/proc` lists them now."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, frontier = [root], [root]
    while frontier:
        children = parents.get(frontier.pop(), [])
        tree += children
        frontier += children
    return tree


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
