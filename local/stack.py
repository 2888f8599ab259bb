"""The whole local stack in one object: Azurite, the Graph and Coconut emulators, and the local
Functions host running `function_app.py` against them. Used by the demo, the integration tests
and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from local.azurite import REPO_ROOT, Azurite, free_port
from local.coconut_emulator import CoconutEmulator
from local.graph_emulator.server import GraphEmulator
from local.host_process import HostProcess
from sync.content_cipher import new_data_key

WEBHOOK_SECRET = "local-webhook-secret"  # noqa: S105 - a local-only test value
COCONUT_API_KEY = "local-coconut-api-key"
GRAPH_CLIENT_STATE = "local-graph-client-state"


@dataclass
class LocalStack:
    """Start with `with LocalStack() as stack:`; `stack.webhook_url` is where Coconut posts."""

    timer_schedule: str = "0 */5 * * * *"
    notifications: bool = False
    extra_settings: dict[str, str] = field(default_factory=dict)
    host_log: Path | None = None
    # Seconds a dequeued message stays invisible while it runs (Azure: 10 minutes, renewed).
    # Crash tests shorten it so work held by a killed host comes back quickly.
    queue_lease: float = 600.0
    # Seconds a staff lease lasts unless renewed (SYNC_LEASE_SECONDS; the service's default is
    # 60): how long a killed host keeps its mailboxes blocked.
    staff_lease: int = 60
    # SYNC_DATA_KEY: a fresh one per stack (kept across host restarts), as a deployment makes.
    data_key: str = field(default_factory=new_data_key, repr=False)
    azurite: Azurite = field(default_factory=Azurite)
    graph: GraphEmulator = field(default_factory=GraphEmulator)
    coconut: CoconutEmulator = field(
        default_factory=lambda: CoconutEmulator(api_key=COCONUT_API_KEY)
    )
    host: HostProcess | None = None
    host_port: int | None = None

    @property
    def webhook_url(self) -> str:
        assert self.host is not None, "the stack is not started"
        return f"{self.host.base_url}/api/coconut/webhooks"

    def settings(self, host_port: int) -> dict[str, str]:
        """The app settings the function app runs with on this stack."""
        public = f"http://127.0.0.1:{host_port}" if self.notifications else ""
        return {
            "AzureWebJobsStorage": self.azurite.connection_string,
            "GRAPH_BASE_URL": self.graph.base_url,
            "GRAPH_AUTH": "none",
            "COCONUT_API_BASE_URL": self.coconut.base_url,
            "COCONUT_API_KEY": COCONUT_API_KEY,
            "COCONUT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SYNC_TIMER_SCHEDULE": self.timer_schedule,
            "PUBLIC_BASE_URL": public,
            "GRAPH_CLIENT_STATE": GRAPH_CLIENT_STATE,
            "SYNC_LEASE_SECONDS": str(self.staff_lease),
            "SYNC_DATA_KEY": self.data_key,
            **self.extra_settings,
        }

    def start(self) -> LocalStack:
        self.azurite.start()
        self.graph.start()
        self.coconut.start()
        self.start_host()
        return self

    def start_host(self) -> HostProcess:
        """(Re)start the Functions host, e.g. after `kill_host` in a crash test."""
        host = HostProcess(
            env={},
            script_root=REPO_ROOT,
            log_path=self.host_log,
            extra_args=("--queue-lease", str(self.queue_lease)),
            # A restarted host keeps its address, so Coconut's retries reach it again.
            port=self.host_port or free_port(),
        )
        self.host_port = host.port
        host.env = self.settings(host.port)
        self.host = host.start()
        return host

    def kill_host(self) -> None:
        if self.host is not None:
            self.host.kill()

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
            self.host = None
        self.coconut.stop()
        self.graph.stop()
        self.azurite.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
