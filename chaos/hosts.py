"""The Functions hosts of a chaos run: the stack's own host and more on the same storage and
emulators, as Azure scales one app out. Every host works the queue; the first one also runs the
timers (Azure runs a timer on one instance at a time) and is where Graph sends notifications.
Coconut's webhooks go to any of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from local.azurite import REPO_ROOT, free_port
from local.host_process import HostProcess
from local.stack import LocalStack

# Once a year at midnight on 1 January: the other hosts' timers never fire during a run.
NEVER: Final = "0 0 0 1 1 *"


@dataclass
class Hosts:
    stack: LocalStack
    count: int = 1
    log_path: Path | None = None
    others: list[HostProcess] = field(default_factory=list)
    kills: list[int] = field(default_factory=list)  # which host each kill hit

    def start(self) -> Hosts:
        """Start the hosts beyond the stack's own (already running)."""
        for number in range(1, self.count):
            assert self.stack.host_port is not None
            host = HostProcess(
                env={
                    **self.stack.settings(self.stack.host_port),
                    "SYNC_TIMER_SCHEDULE": NEVER,
                    "COCONUT_RECONCILE_SCHEDULE": NEVER,
                },
                script_root=REPO_ROOT,
                log_path=_numbered(self.log_path, number),
                extra_args=("--queue-lease", str(self.stack.queue_lease)),
                port=free_port(),
            )
            self.others.append(host.start())
        return self

    @property
    def webhook_urls(self) -> list[str]:
        return [self.stack.webhook_url] + [
            f"{host.base_url}/api/coconut/webhooks" for host in self.others
        ]

    def kill(self, number: int) -> None:
        """Kill one host without warning (a crash); `restart` brings it back on its port."""
        self.kills.append(number)
        if number == 0:
            self.stack.kill_host()
        else:
            self.others[number - 1].kill()

    def restart(self, number: int) -> None:
        if number == 0:
            self.stack.start_host()
        else:
            self.others[number - 1].start()

    def stop(self) -> None:
        for host in self.others:
            host.stop()
        self.others.clear()


def _numbered(path: Path | None, number: int) -> Path | None:
    """`chaos-host.log` -> `chaos-host-2.log` for the second host."""
    if path is None:
        return None
    return path.with_name(f"{path.stem}-{number + 1}{path.suffix}")


def host_logs(path: Path | None, count: int) -> list[Path]:
    if path is None:
        return []
    return [path] + [p for n in range(1, count) if (p := _numbered(path, n)) is not None]
