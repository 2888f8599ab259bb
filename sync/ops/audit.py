"""The ops API's audit trail: one record per request saying who asked (the caller's Entra object
id, never a name or an e-mail address), what (the command), for whom (staff ids) and how it ended,
refusals included. They are the `ops_*` records of docs/operations.md, whose KQL lists who did
what.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from sync.ops.auth import Caller
from sync.ops.commands import COMMANDS
from sync.telemetry import log_operation

log = logging.getLogger("sync.ops")

CALLER_OBJECT_ID: Final = "caller_object_id"
# The audit's name for what each route does; the staff command route names its own command.
ROUTE_COMMANDS: Final = {
    "ops_staff_list": "status",
    "ops_staff_detail": "show",
    "ops_resync": "resync_all",
    "ops_poison_list": "poison",
    "ops_poison_replay": "poison_replay",
}
# A long list of staff is recorded by its count and its first ids.
LISTED_STAFF: Final = 20


def command_of(route: str, asked: str | None = None) -> str:
    """The command a request asked for. `asked` is the caller's text from the route: only a
    known command is recorded as such, never whatever else was sent."""
    if asked is not None:
        return asked if asked in COMMANDS else "unknown"
    return ROUTE_COMMANDS.get(route, route.removeprefix("ops_"))


def staff_list_dimensions(staff_ids: Sequence[str] | None) -> dict[str, str | int]:
    """How a request for many staff members is recorded: all of them, or the ones listed."""
    if staff_ids is None:
        return {"scope": "all"}
    shown = ",".join(staff_ids[:LISTED_STAFF])
    if len(staff_ids) > LISTED_STAFF:
        shown += f",+{len(staff_ids) - LISTED_STAFF} more"
    return {"scope": "listed", "staff_count": len(staff_ids), "staff_ids": shown}


def record_request(
    route: str,
    *,
    command: str,
    caller: Caller | None,
    http_status: int,
    outcome: str,
    staff_id: str | None = None,
    latency_ms: float | None = None,
    **details: str | int,
) -> None:
    who = caller.object_id if caller is not None else "an anonymous caller"
    dimensions: dict[str, str | int | float | None] = {
        "command": command,
        "staff_id": staff_id,
        CALLER_OBJECT_ID: caller.object_id if caller is not None else None,
        "http_status": http_status,
        "latency_ms": latency_ms,
        **details,
    }
    log_operation(
        log,
        f"ops {command} by {who} answered {http_status}",
        operation=route,
        outcome=outcome,
        level=logging.INFO,
        **dimensions,
    )
