"""Start and stop Azurite (the npm package pinned in package.json) for the demo and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's well-known development account (public, documented; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f} s")


@dataclass
class Azurite:
    """An Azurite process on loopback; in-memory unless a data folder is given."""

    blob_port: int = field(default_factory=free_port)
    queue_port: int = field(default_factory=free_port)
    table_port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    _process: subprocess.Popen[bytes] | None = None
    _log_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT_NAME};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT_NAME};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT_NAME};"
        )

    def start(self) -> Azurite:
        executable = str(AZURITE_BIN) if AZURITE_BIN.exists() else shutil.which("azurite")
        if executable is None:
            raise RuntimeError("azurite is not installed: run `npm ci` in the repository root")
        self._log_dir = tempfile.TemporaryDirectory(prefix="azurite-")
        args = [
            executable,
            "--silent",
            "--loose",
            # Azurite reports usage to the internet by default; nothing leaves this machine.
            "--disableTelemetry",
            # azure-storage-queue 12.18 sends a newer API version than Azurite 3.37 knows.
            "--skipApiVersionCheck",
            "--blobHost",
            "127.0.0.1",
            "--queueHost",
            "127.0.0.1",
            "--tableHost",
            "127.0.0.1",
            "--blobPort",
            str(self.blob_port),
            "--queuePort",
            str(self.queue_port),
            "--tablePort",
            str(self.table_port),
        ]
        if self.data_dir is None:
            args += ["--inMemoryPersistence"]
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.data_dir)]
        # The child keeps its own handle on the log; the parent's is closed once it has started.
        with open(Path(self._log_dir.name) / "azurite.log", "wb") as log:
            self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        for port in (self.blob_port, self.queue_port, self.table_port):
            if self._process.poll() is not None:
                raise RuntimeError(f"azurite exited: {self.log_text()}")
            wait_for_port(port)
        return self

    def log_text(self) -> str:
        if self._log_dir is None:
            return ""
        return (Path(self._log_dir.name) / "azurite.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
