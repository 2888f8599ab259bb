"""`python -m local.coconut_emulator serve|busy`: run the emulator, or show a user's busy time."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console

from local.coconut_emulator.app import DEFAULT_BASE_PATH, build_app
from local.coconut_emulator.busy import busy_table
from local.coconut_emulator.control import Roster
from local.coconut_emulator.faults import FaultInjector, FaultPlan
from local.coconut_emulator.paths import encode_segment
from local.coconut_emulator.server import DEFAULT_API_KEY
from local.coconut_emulator.state import CoconutState


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m local.coconut_emulator")
    commands = root.add_subparsers(dest="command", required=True)

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

    busy = commands.add_parser("busy", help="print a user's external events (running emulator)")
    busy.add_argument("user_id")
    busy.add_argument("--url", default="http://127.0.0.1:8082", help="the emulator's root URL")
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
        )
    )
    app = build_app(state, faults, args.api_key, args.base_path)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", lifespan="off")
    return 0


def busy(args: argparse.Namespace, console: Console) -> int:
    url = f"{args.url.rstrip('/')}/_emulator/users/{encode_segment(args.user_id)}/external-events"
    response = httpx.get(url, timeout=10.0)
    if response.status_code == 404:
        console.print(f"no user {args.user_id!r} on the emulator's roster")
        return 1
    response.raise_for_status()
    console.print(busy_table(args.user_id, response.json()["external_events"]))
    return 0


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return busy(args, console or Console())


if __name__ == "__main__":
    sys.exit(main())
