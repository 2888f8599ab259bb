"""`python -m sync.ops`: the ops API from a terminal, with readable tables and, for long work
(a first backfill of every staff member, a tenant resync), a progress bar with rate and ETA.

    python -m sync.ops --url https://func-x.azurewebsites.net --audience api://<client id> status
    python -m sync.ops status --status Error
    python -m sync.ops show U-42
    python -m sync.ops resync U-42 U-43 --wait
    python -m sync.ops backfill                 # refresh the roster, resync everyone, follow it
    python -m sync.ops reinitialise U-42
    python -m sync.ops disconnect U-42 --wait
    python -m sync.ops reconnect U-42
    python -m sync.ops poison
    python -m sync.ops poison replay [--staff U-42]
    python -m sync.ops rotate-data-key          # re-seal stored content under SYNC_DATA_KEY

`--url` and `--audience` default to SYNC_OPS_URL and SYNC_OPS_AUDIENCE (deployment outputs). The
command line signs in with azure-identity (sync/ops/signin.py): the Azure CLI's sign-in, a managed
identity, ... or, with `--device-code`, a code entered on another device. The caller needs the
ops API's Sync.Read role, and Sync.Operate for commands (docs/operations.md, Access).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from azure.core.exceptions import ClientAuthenticationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from sync.ops.client import OpsClient, OpsRefused, parse_time
from sync.ops.signin import NoAudience, sign_in

DEFAULT_URL: Final = "http://127.0.0.1:7071"
STATUS_STYLE: Final = {
    "Syncing": "green",
    "Warning": "yellow",
    "Error": "bold red",
    "Disabled": "dim",
    "Disconnecting": "magenta",
    "Disconnected": "magenta",
    "Pending": "cyan",
}
# A command on a leased staff member is tried this often before the refusal is shown.
LEASED_TRIES: Final = 6
# Statuses that mean "not finished yet" when following a command.
IN_FLIGHT: Final = frozenset({"Pending", "Disconnecting"})


# ----- pure parts --------------------------------------------------------------------------------


def finished(rows: Iterable[Mapping[str, Any]], since: datetime, wanted: set[str]) -> set[str]:
    """Staff among `wanted` whose worker has recorded an outcome after `since`."""
    done: set[str] = set()
    for row in rows:
        at = parse_time(row.get("status_at"))
        if (
            row.get("staff_id") in wanted
            and at is not None
            and at > since
            and row.get("status") not in IN_FLIGHT
        ):
            done.add(str(row["staff_id"]))
    return done


def _when(value: object) -> str:
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def _status(value: object) -> Text:
    text = str(value)
    return Text(text, style=STATUS_STYLE.get(text, ""))


def counts_line(counts: Mapping[str, int]) -> Text:
    line = Text()
    for status, count in counts.items():
        if line:
            line.append("  ")
        line.append(f"{status} ", style=STATUS_STYLE.get(status, ""))
        line.append(str(count), style="bold")
    return line


def staff_table(overview: Mapping[str, Any], title: str = "Staff") -> Table:
    """The status table: one row per staff member (the demo prints it too)."""
    table = Table(title=title, title_justify="left")
    table.add_column("Staff", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Reason", overflow="fold", max_width=60)
    table.add_column("Last sync (UTC)", no_wrap=True)
    table.add_column("Pending", justify="right")
    table.add_column("Events", justify="right")
    table.add_column("Leased")
    for row in overview.get("staff", []):
        table.add_row(
            str(row["staff_id"]),
            _status(row["status"]),
            str(row.get("reason") or ""),
            _when(row.get("last_sync_at")),
            str(row.get("pending", 0)),
            str(row.get("events", 0)),
            "yes" if row.get("leased_until") else "",
        )
    return table


def detail_table(detail: Mapping[str, Any]) -> Table:
    table = Table(
        title=f"Staff member {detail['staff_id']}", title_justify="left", show_header=False
    )
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in detail.items():
        if key == "status":
            table.add_row(key, _status(value))
        elif key.endswith("_at") or key == "leased_until":
            table.add_row(key, _when(value))
        elif isinstance(value, list):
            table.add_row(key, ", ".join(map(str, value)) or "—")
        else:
            table.add_row(key, str(value) if value not in ("", None) else "—")
    return table


def poison_table(listing: Mapping[str, Any]) -> Table:
    table = Table(title=f"Poison queue: {listing['length']} message(s)", title_justify="left")
    for column in ("Message", "Inserted (UTC)", "Dequeued", "Staff", "Reason", "Action", "Full"):
        table.add_column(column)
    for message in listing.get("messages", []):
        table.add_row(
            str(message["id"]),
            _when(message.get("inserted_at")),
            str(message.get("dequeue_count") or ""),
            _poisoned_staff(message),
            str(message.get("reason") or ""),
            str(message.get("action") or ""),
            "yes" if message.get("full") else "",
        )
    return table


def _poisoned_staff(message: Mapping[str, Any]) -> str:
    """One staff id, a timer batch's count and first ids, or that the body was unreadable."""
    staff_ids = [str(s) for s in message.get("staff_ids") or []]
    if message.get("staff_id"):
        return str(message["staff_id"])
    if staff_ids:
        shown = ", ".join(staff_ids[:3]) + (", ..." if len(staff_ids) > 3 else "")
        return f"{len(staff_ids)} staff: {shown}"
    return "(unreadable)"  # not "[...]": rich would take it for markup and print nothing


class RateColumn(ProgressColumn):
    """Staff members finished per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} staff/s" if speed else "- staff/s", style="progress.data.speed")


# ----- commands ----------------------------------------------------------------------------------


class Cli:
    def __init__(self, client: OpsClient, console: Console, *, as_json: bool) -> None:
        self.client = client
        self.console = console
        self.as_json = as_json

    def emit(self, document: Mapping[str, Any], render: Callable[[], None]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(document))
        else:
            render()

    def status(self, status: str | None) -> None:
        overview = self.client.staff(status)

        def render() -> None:
            self.console.print(counts_line(overview["counts"]))
            self.console.print(staff_table(overview, f"Staff ({overview['total']} in all)"))

        self.emit(overview, render)

    def show(self, staff_id: str) -> None:
        detail = self.client.detail(staff_id)
        self.emit(detail, lambda: self.console.print(detail_table(detail)))

    def command(self, command: str, staff_ids: Sequence[str], *, wait: float | None) -> None:
        accepted = [self.when_free(staff_id, command) for staff_id in staff_ids]
        for answer in accepted:
            self.emit(
                answer,
                lambda a=answer: self.console.print(  # type: ignore[misc]
                    f"{a['command']} {a['staff_id']}: accepted (now ", _status(a["status"]), ")"
                ),
            )
        if wait is not None and accepted:
            since = min(_required_time(a["requested_at"]) for a in accepted)
            self.follow({a["staff_id"] for a in accepted}, since, wait, f"{command}")

    def when_free(self, staff_id: str, command: str) -> dict[str, Any]:
        """Run the command, waiting (a few times, as long as the API says) while a worker
        holds the staff member."""

        def told_to_wait(attempt: RetryCallState) -> None:
            self.console.print(f"[dim]{staff_id} is being synced; trying again…[/dim]")

        retrying = Retrying(
            retry=retry_if_exception(_leased),
            wait=_retry_after,
            stop=stop_after_attempt(LEASED_TRIES),
            before_sleep=told_to_wait,
            reraise=True,
        )
        answer: dict[str, Any] = retrying(self.client.command, staff_id, command)
        return answer

    def resync_all(self, *, wait: float | None) -> None:
        answer = self.client.resync()
        staff_ids = set(answer["staff_ids"])
        self.emit(
            answer,
            lambda: self.console.print(
                f"Full resync queued for {len(staff_ids)} staff member(s)"
                + (
                    f" (roster: {answer['roster_size']})"
                    if answer.get("roster_size") is not None
                    else ""
                )
            ),
        )
        if wait is not None and staff_ids:
            self.follow(staff_ids, _required_time(answer["requested_at"]), wait, "resync")

    def follow(self, staff_ids: set[str], since: datetime, timeout: float, label: str) -> None:
        """A progress bar until every staff member has an outcome newer than `since`."""
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=self.as_json,
        )
        overview: dict[str, Any] = {}
        with progress:
            task = progress.add_task(label, total=len(staff_ids))
            while done != staff_ids and time.monotonic() < deadline:
                time.sleep(0.5)
                overview = self.client.staff()
                done = finished(overview["staff"], since, staff_ids)
                progress.update(task, completed=len(done))
        followed = {
            **overview,
            "staff": [r for r in overview.get("staff", []) if r["staff_id"] in staff_ids],
        }
        self.emit(followed, lambda: self.console.print(staff_table(followed, f"After {label}")))
        if done != staff_ids:
            raise TimeoutError(f"{len(staff_ids - done)} staff member(s) not finished in time")

    def poison(self) -> None:
        listing = self.client.poison()
        self.emit(listing, lambda: self.console.print(poison_table(listing)))

    def replay(self, staff_id: str | None) -> None:
        outcome = self.client.replay(staff_id)
        self.emit(
            outcome,
            lambda: self.console.print(
                f"Replayed {outcome['replayed']} message(s)"
                + (f" for {', '.join(outcome['staff_ids'])}" if outcome["staff_ids"] else "")
                + (f"; {outcome['left']} left in the poison queue" if outcome["left"] else "")
            ),
        )

    def rotate_data_key(self) -> bool:
        """Call until every record is under the current key (or a call moves nothing);
        whether the rotation is complete."""
        resealed = 0
        while True:
            report = self.client.rotate_data_key()
            resealed += int(report["resealed"])
            if report["complete"] or not report["resealed"]:
                break
        self.emit(report, lambda: self.console.print(rotation_summary(report, resealed)))
        return bool(report["complete"])


def rotation_summary(report: Mapping[str, Any], resealed: int) -> Text:
    line = Text(f"Data key {report['key_id']}: {resealed} record(s) re-sealed; ")
    if report["complete"]:
        line.append("rotation complete", style="green")
        line.append(" (SYNC_DATA_KEY_PREVIOUS can go)")
        return line
    line.append(f"{report['remaining']} left", style="yellow")
    if report["unreadable"]:
        line.append(f", unreadable with either key: {', '.join(report['unreadable'])}")
    return line


def _required_time(value: object) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise ValueError("the API answered without a time")
    return moment


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m sync.ops", description="See and steer the Coconut ⇄ Microsoft 365 sync."
    )
    root.add_argument("--url", default=os.environ.get("SYNC_OPS_URL", DEFAULT_URL))
    root.add_argument(
        "--audience",
        default=os.environ.get("SYNC_OPS_AUDIENCE"),
        help="the ops API to sign in for, api://<client id> (not needed locally)",
    )
    root.add_argument(
        "--device-code", action="store_true", help="sign in with a code on another device"
    )
    root.add_argument(
        "--tenant", default=os.environ.get("AZURE_TENANT_ID"), help="tenant for --device-code"
    )
    root.add_argument("--json", action="store_true", help="print the API's JSON instead")
    commands = root.add_subparsers(dest="command", required=True)

    status = commands.add_parser("status", help="counts by status and every staff member")
    status.add_argument("--status", help="only staff in this status (e.g. Error)")
    show = commands.add_parser("show", help="one staff member in detail")
    show.add_argument("staff_id")

    def with_wait(sub: argparse.ArgumentParser, default: float | None) -> None:
        sub.add_argument(
            "--wait",
            nargs="?",
            type=float,
            const=600.0,
            default=default,
            metavar="SECONDS",
            help="follow the work with a progress bar (at most SECONDS, default 600)",
        )

    for name, text in (
        ("resync", "full reconcile of both directions"),
        ("reinitialise", "start the import window afresh"),
        ("disconnect", "remove the service's events and busy time, stop syncing"),
        ("reconnect", "sync a disconnected staff member again"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("staff_ids", nargs="*" if name == "resync" else "+", metavar="staff_id")
        if name == "resync":
            sub.add_argument("--all", action="store_true", help="every staff member")
        with_wait(sub, None)
    backfill = commands.add_parser(
        "backfill", help="refresh the roster and fully sync every staff member, with progress"
    )
    with_wait(backfill, 3600.0)
    poison = commands.add_parser("poison", help="list (or replay) the poison queue")
    poison.add_argument("action", nargs="?", choices=("list", "replay"), default="list")
    poison.add_argument("--staff", help="replay only this staff member's messages")
    commands.add_parser(
        "rotate-data-key", help="re-seal stored content under SYNC_DATA_KEY (ends a rotation)"
    )
    return root


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = parser().parse_args(argv)
    out = console or Console()
    errors = Console(stderr=True) if console is None else console
    try:
        auth = sign_in(args.url, args.audience, device_code=args.device_code, tenant_id=args.tenant)
    except NoAudience as missing:
        errors.print(f"[red]cannot sign in:[/red] {missing}")
        return 2
    with OpsClient(args.url, auth) as client:
        cli = Cli(client, out, as_json=args.json)
        try:
            match args.command:
                case "status":
                    cli.status(args.status)
                case "show":
                    cli.show(args.staff_id)
                case "resync" if args.all:
                    cli.resync_all(wait=args.wait)
                case "resync" | "reinitialise" | "disconnect" | "reconnect":
                    if not args.staff_ids:
                        errors.print("[red]name at least one staff member, or use --all[/red]")
                        return 2
                    cli.command(args.command, args.staff_ids, wait=args.wait)
                case "backfill":
                    cli.resync_all(wait=args.wait)
                case "poison" if args.action == "replay":
                    cli.replay(args.staff)
                case "poison":
                    cli.poison()
                case "rotate-data-key":
                    if not cli.rotate_data_key():
                        return 1
        except OpsRefused as refused:
            errors.print(f"[red]refused ({refused.status} {refused.code}):[/red] {refused.message}")
            return 1
        except httpx.TransportError as error:
            errors.print(f"[red]cannot reach {args.url}:[/red] {type(error).__name__}")
            return 2
        except ClientAuthenticationError as error:
            first_line = str(error.message or error).strip().splitlines()[:1]
            errors.print(
                f"[red]cannot sign in:[/red] {''.join(first_line)} "
                "Sign in with `az login`, or use --device-code."
            )
            return 2
        except TimeoutError as late:
            errors.print(f"[yellow]{late}[/yellow]")
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _leased(error: BaseException) -> bool:
    """A command refused because a worker holds the staff member right now."""
    return isinstance(error, OpsRefused) and error.code == "leased"


def _retry_after(attempt: RetryCallState) -> float:
    """As long as the refusal said (`retry_after`), else a second."""
    error = attempt.outcome.exception() if attempt.outcome is not None else None
    if isinstance(error, OpsRefused):
        return float(error.document.get("retry_after") or 1)
    return 1.0
