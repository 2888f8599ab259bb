"""`python -m local.graph_emulator …`: run the emulator, or drive a running one."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from local.graph_emulator.timezones import parse_instant, zone_for

DEFAULT_URL = "http://127.0.0.1:8081"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    with httpx.Client(base_url=args.url.rstrip("/") + "/_emulator", timeout=30) as client:
        return int(COMMANDS[args.command](client, args))


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from local.graph_emulator.app import EmulatorApp
    from local.graph_emulator.server import load_seed
    from local.graph_emulator.state import EmulatorState
    from local.graph_emulator.throttling import ThrottleLimits

    limits = ThrottleLimits(
        requests_per_window=args.requests_per_window,
        window_seconds=args.window_seconds,
        concurrency=args.concurrency,
    )
    state = EmulatorState(limits)
    if args.seed:
        load_seed(state, Path(args.seed))
    state.outbox.start()
    try:
        uvicorn.run(EmulatorApp(state), host=args.host, port=args.port, log_level="info")
    finally:
        state.outbox.stop()
    return 0


def calendar(client: httpx.Client, args: argparse.Namespace) -> int:
    users = {u["userPrincipalName"].lower(): u for u in _get(client, "/users")["value"]}
    users.update({u["id"].lower(): u for u in list(users.values())})
    by_mail = {(u.get("mail") or "").lower(): u for u in list(users.values())}
    user = users.get(args.user.lower()) or by_mail.get(args.user.lower())
    if user is None:
        Console(stderr=True).print(f"no user {args.user!r} in the emulator")
        return 1
    start = parse_instant(args.start, "start") if args.start else datetime.now(UTC) - timedelta(1)
    end = parse_instant(args.end, "end") if args.end else start + timedelta(days=30)
    events = _get(
        client,
        f"/users/{user['id']}/calendar-view",
        params={"start": start.isoformat(), "end": end.isoformat()},
    )["value"]
    zone = zone_for(user.get("timeZone")) or UTC
    table = Table(title=f"{user['displayName']} — {user.get('timeZone')}")
    for column in ("Start", "End", "Subject", "Show as", "Type", "Tags", "Id"):
        table.add_column(column)
    for event in events:
        tags = ", ".join(
            f"{p['id'].split()[-1]}={p['value']}"
            for p in event.get("singleValueExtendedProperties", [])
        )
        table.add_row(
            _local(event["start"], zone),
            _local(event["end"], zone),
            event.get("subject") or "",
            event.get("showAs") or "",
            event.get("type") or "",
            tags,
            "…" + event["id"][-10:],
        )
    Console().print(table)
    return 0


def _local(value: dict[str, str], zone: Any) -> str:
    instant = parse_instant(value["dateTime"], "dateTime")
    return instant.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def seed(client: httpx.Client, args: argparse.Namespace) -> int:
    _check(client.post("/seed", json=json.loads(Path(args.file).read_text())))
    return 0


def counters(client: httpx.Client, args: argparse.Namespace) -> int:
    data = _get(client, "/counters")
    table = Table(title=f"Requests (429s sent: {data['throttledTotal']})")
    for column in ("Mailbox", "Method", "Status", "Count"):
        table.add_column(column)
    for mailbox, info in data["mailboxes"].items():
        for method, statuses in info["requests"].items():
            for status, count in sorted(statuses.items()):
                table.add_row(mailbox, method, status, str(count))
    Console().print(table)
    return 0


def reset(client: httpx.Client, args: argparse.Namespace) -> int:
    _check(client.post("/reset"))
    return 0


def throttle(client: httpx.Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"resetWindow": True}
    if args.requests is not None:
        body["requestsPerWindow"] = args.requests
    if args.window is not None:
        body["windowSeconds"] = args.window
    if args.concurrency is not None:
        body["concurrency"] = args.concurrency
    Console().print_json(data=_check(client.put("/throttling", json=body)).json())
    return 0


def faults(client: httpx.Client, args: argparse.Namespace) -> int:
    if args.clear:
        _check(client.delete("/faults"))
        return 0
    body = json.loads(Path(args.file).read_text())
    Console().print_json(data=_check(client.put("/faults", json=body)).json())
    return 0


def fault_add(client: httpx.Client, args: argparse.Namespace) -> int:
    """Add rules next to the current ones; prints their names (for `fault-clear`)."""
    rule = json.loads(Path(args.file).read_text() if args.file else args.rule)
    names = _check(client.post("/faults", json=rule)).json()["names"]
    Console().print("\n".join(names))
    return 0


def fault_clear(client: httpx.Client, args: argparse.Namespace) -> int:
    _check(client.delete(f"/faults/{args.name}"))
    return 0


def mailbox(client: httpx.Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"hasMailbox": args.enable}
    if args.error:
        body["mailboxError"] = args.error
    if args.access_denied is not None:
        body["accessDenied"] = args.access_denied == "on"
    Console().print_json(data=_check(client.patch(f"/users/{args.user}", json=body)).json())
    return 0


def move_event(client: httpx.Client, args: argparse.Namespace) -> int:
    url = f"/users/{args.user}/events/{args.event}/move"
    _check(client.post(url, json={"calendar": args.calendar}))
    return 0


def delete_event(client: httpx.Client, args: argparse.Namespace) -> int:
    params = {"permanent": "true"} if args.permanent else None
    _check(client.delete(f"/users/{args.user}/events/{args.event}", params=params))
    return 0


def lifecycle(client: httpx.Client, args: argparse.Namespace) -> int:
    url = f"/subscriptions/{args.subscription}/lifecycle"
    _check(client.post(url, json={"lifecycleEvent": args.event}))
    return 0


def invalidate_delta(client: httpx.Client, args: argparse.Namespace) -> int:
    data = _check(client.post(f"/users/{args.user}/delta-tokens/invalidate")).json()
    Console().print(f"invalidated {data['invalidated']} token(s)")
    return 0


def _get(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> Any:
    return _check(client.get(path, params=params)).json()


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        Console(stderr=True).print(f"{response.status_code}: {response.text}")
        sys.exit(1)
    return response


COMMANDS = {
    "calendar": calendar,
    "seed": seed,
    "counters": counters,
    "reset": reset,
    "throttle": throttle,
    "faults": faults,
    "fault-add": fault_add,
    "fault-clear": fault_clear,
    "mailbox": mailbox,
    "move-event": move_event,
    "delete-event": delete_event,
    "lifecycle": lifecycle,
    "invalidate-delta": invalidate_delta,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.graph_emulator")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="run the emulator on loopback")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8081)
    run.add_argument("--seed", help="JSON file with users and events")
    run.add_argument("--requests-per-window", type=int, default=10_000)
    run.add_argument("--window-seconds", type=float, default=600.0)
    run.add_argument("--concurrency", type=int, default=4)

    def remote(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--url", default=DEFAULT_URL, help="the emulator's root URL")
        return sub

    view = remote("calendar", "print a mailbox's calendar as a table")
    view.add_argument("--user", required=True, help="user id, UPN or mail")
    view.add_argument("--start", help="ISO instant (default: yesterday)")
    view.add_argument("--end", help="ISO instant (default: start + 30 days)")
    remote("seed", "load users and events from a JSON file").add_argument("file")
    remote("counters", "requests per mailbox by method and status")
    remote("reset", "forget everything")
    limits = remote("throttle", "change the throttling limits")
    limits.add_argument("--requests", type=int)
    limits.add_argument("--window", type=float)
    limits.add_argument("--concurrency", type=int)
    fault = remote("faults", "set fault rules from a JSON file, or clear them")
    group = fault.add_mutually_exclusive_group(required=True)
    group.add_argument("--file")
    group.add_argument("--clear", action="store_true")
    added = remote("fault-add", "add fault rules (JSON: one rule or {rules: [...]})")
    source = added.add_mutually_exclusive_group(required=True)
    source.add_argument("--rule", help="the rule as JSON text")
    source.add_argument("--file", help="a JSON file")
    remote("fault-clear", "remove one fault rule by name").add_argument("name")
    box = remote("mailbox", "make a user's mailbox reachable through Graph, or not")
    box.add_argument("--user", required=True, help="user id or UPN")
    switch = box.add_mutually_exclusive_group(required=True)
    switch.add_argument("--enable", dest="enable", action="store_true")
    switch.add_argument("--disable", dest="enable", action="store_false")
    box.add_argument("--error", choices=["MailboxNotEnabledForRESTAPI", "ResourceNotFound"])
    box.add_argument("--access-denied", choices=["on", "off"])
    move = remote("move-event", "as the person: move an event to another calendar")
    move.add_argument("--user", required=True)
    move.add_argument("--event", required=True)
    move.add_argument("--calendar", required=True, help="calendar id or name, or deletedItems")
    delete = remote("delete-event", "as the person: delete an event (to Deleted Items)")
    delete.add_argument("--user", required=True)
    delete.add_argument("--event", required=True)
    delete.add_argument("--permanent", action="store_true", help="purge it instead")
    life = remote("lifecycle", "send a lifecycle notification for a subscription")
    life.add_argument("--subscription", required=True)
    life.add_argument(
        "--event",
        required=True,
        choices=["reauthorizationRequired", "subscriptionRemoved", "missed"],
    )
    remote("invalidate-delta", "invalidate a mailbox's delta tokens").add_argument(
        "--user", required=True
    )
    return parser
