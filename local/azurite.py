"""Start and stop Azurite (the npm package pinned in package.json) for the demo and the tests."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BINS = REPO_ROOT / "node_modules" / ".bin"

# Azurite's well-known development account (public, documented; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


_COMMON_OPTIONS = (
    "--silent",
    "--loose",
    # Azurite reports usage to the internet by default; nothing leaves this machine.
    "--disableTelemetry",
    # azure-storage-queue 12.18 sends a newer API version than Azurite 3.37 knows.
    "--skipApiVersionCheck",
)


def _executable(service: str) -> str:
    """Azurite's command for one service (`azurite-table`, `azurite-queue`)."""
    name = f"azurite-{service}"
    local = AZURITE_BINS / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError("azurite is not installed: run `npm ci` in the repository root")
    return found


# Ports this process has handed out: a stack picks all its ports before its servers bind them,
# and the system may offer a port again until then.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, and that this process has not
    handed out before."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f} s")


# Where the queue service keeps its messages when the data is not meant to outlive the stack:
# in memory-backed storage where the machine has it (Linux's /dev/shm), else the temp folder.
# (TemporaryDirectory makes a private folder inside it.)
_SHARED_MEMORY = Path("/dev/shm")  # noqa: S108
_SCRATCH_ROOT = _SHARED_MEMORY if _SHARED_MEMORY.is_dir() else None


@dataclass
class Azurite:
    """Azurite's table and queue services on loopback, each in a process of its own (the
    service uses no blobs). Tables are in memory unless a data folder is given; queues are
    always in a folder (a scratch one that goes with the stack, unless a data folder is given).

    Two processes, because Azure's table and queue services do not share a CPU either, and
    Azurite serves each request on one Node thread. Queues in a folder, because Azurite's
    in-memory queue keeps every message in an extent of its own and its clean-up, once a minute,
    deletes them one by one, re-sorting an index each time: after a minute of a thousand
    messages that blocks the whole process for more than a second (profiled with `node
    --cpu-prof` during `make bench`'s 100 webhooks/s). In a folder, messages share extents.
    """

    queue_port: int = field(default_factory=free_port)
    table_port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _log_dir: tempfile.TemporaryDirectory[str] | None = None
    _scratch: tempfile.TemporaryDirectory[str] | None = None

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT_NAME};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT_NAME};"
        )

    def start(self) -> Azurite:
        self._log_dir = tempfile.TemporaryDirectory(prefix="azurite-")
        if self.data_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="azurite-queue-", dir=_SCRATCH_ROOT)
            table_data = ["--inMemoryPersistence"]
            queue_data = ["--location", self._scratch.name]
        else:
            for service in ("table", "queue"):
                (self.data_dir / service).mkdir(parents=True, exist_ok=True)
            table_data = ["--location", str(self.data_dir / "table")]
            queue_data = ["--location", str(self.data_dir / "queue")]
        services = [
            (
                "table",
                ["--tableHost", "127.0.0.1", "--tablePort", str(self.table_port)],
                table_data,
            ),
            (
                "queue",
                ["--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port)],
                queue_data,
            ),
        ]
        # Each child keeps its own handle on the log; the parent's is closed once it has started.
        with open(Path(self._log_dir.name) / "azurite.log", "wb") as log:
            for service, address, data in services:
                args = [_executable(service), *_COMMON_OPTIONS, *address, *data]
                self._processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        for process, port in zip(self._processes, (self.table_port, self.queue_port), strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"azurite exited: {self.log_text()}")
            wait_for_port(port)
        return self

    def log_text(self) -> str:
        if self._log_dir is None:
            return ""
        return (Path(self._log_dir.name) / "azurite.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        for process in self._processes:
            # SIGINT: `azurite-table` saves its data and exits on it, but not on SIGTERM.
            process.send_signal(signal.SIGINT)
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes = []
        for folder in (self._log_dir, self._scratch):
            if folder is not None:
                folder.cleanup()
        self._log_dir = self._scratch = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
