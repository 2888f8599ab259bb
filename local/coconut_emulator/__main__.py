"""`python -m local.coconut_emulator ...`: run the emulator, or look into and change a running one.

`serve` runs it; `busy`, `appointments` and `absences` show what it holds for a user;
`calendar-sync` turns a user's sync on or off; `record ...` changes Coconut's record without
sending a webhook.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from rich.console import Console

from local.coconut_emulator.app import DEFAULT_BASE_PATH, build_app
from local.coconut_emulator.busy import busy_table
from local.coconut_emulator.control import Roster
from local.coconut_emulator.control_client import ControlClient, ControlError
from local.coconut_emulator.faults import FaultInjector, FaultPlan
from local.coconut_emulator.record_cli import add_record_commands, run_record_change
from local.coconut_emulator.record_tables import absences_table, appointments_table
from local.coconut_emulator.server import DEFAULT_API_KEY
from local.coconut_emulator.state import CoconutState

DEFAULT_URL = "http://127.0.0.1:8082"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m local.coconut_emulator")
    commands = root.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=DEFAULT_URL, help="the running emulator's root URL")

    serve = commands.add_parser("serve", help="serve the Coconut API emulator on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8082)
    serve.add_argument("--api-key", default=DEFAULT_API_KEY)
    serve.add_argument("--base-path", default=DEFAULT_BASE_PATH)
    serve.add_argument(
        "--users", type=Path, help='JSON file {"users": [{"id", "email", "first_name", ...}]}'
    )
    serve.add_argument("--throttle-rate", type=float, default=0.0, help="share answered 429")
    serve.add_argument("--retry-after", type=int, default=1, help="Retry-After of a 429, seconds")
    serve.add_argument("--server-error-rate", type=float, default=0.0, help="share answered 5xx")
    serve.add_argument("--latency", type=float, default=0.0, help="added seconds per request")
    serve.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    serve.add_argument(
        "--listing-race",
        action="store_true",
        help="page listings over the live record (an item can be missed or shown twice)",
    )

    for name, text in (
        ("busy", "print a user's external events"),
        ("appointments", "print a user's appointments in Coconut's record"),
        ("absences", "print a user's absences in Coconut's record"),
    ):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("user_id")

    switch = commands.add_parser(
        "calendar-sync", parents=[common], help="turn a user's calendar sync on or off"
    )
    switch.add_argument("user_id")
    switch.add_argument("state", choices=("on", "off"))

    add_record_commands(commands, common)
    return root


def serve(args: argparse.Namespace) -> int:
    state = CoconutState()
    if args.users is not None:
        state.replace_users(Roster.model_validate_json(args.users.read_bytes()).users)
    faults = FaultInjector(
        FaultPlan(
            throttle_rate=args.throttle_rate,
            retry_after_seconds=args.retry_after,
            server_error_rate=args.server_error_rate,
            latency_seconds=args.latency,
            seed=args.seed,
            listing_race=args.listing_race,
        )
    )
    app = build_app(state, faults, args.api_key, args.base_path)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", lifespan="off")
    return 0


def inspect(args: argparse.Namespace, control: ControlClient, console: Console) -> int:
    """Answer one of the commands that read or switch something for a user."""
    if args.command == "busy":
        try:
            events = control.external_events(args.user_id)
        except ControlError as error:
            if error.status != 404:
                raise
            console.print(f"no user {args.user_id!r} on the emulator's roster")
            return 1
        console.print(busy_table(args.user_id, events))
    elif args.command == "appointments":
        console.print(appointments_table(args.user_id, control.appointments(args.user_id)))
    elif args.command == "absences":
        console.print(absences_table(args.user_id, control.unavailabilities(args.user_id)))
    else:
        user = control.set_calendar_sync(args.user_id, args.state == "on")
        console.print(f"calendar sync of {user['id']}: {'on' if user['calendar_sync'] else 'off'}")
    return 0


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    console = console or Console()
    with ControlClient(args.url) as control:
        try:
            if args.command == "record":
                return run_record_change(args, control, console)
            return inspect(args, control, console)
        except ControlError as error:
            console.print(str(error))
            return 1


if __name__ == "__main__":
    sys.exit(main())
