"""The ops HTTP API behind the `ops/...` routes of function_app.py: input checks, one call into
the ops modules, and the JSON answer (errors included), with one log record per request.

| method | route                            | answer                                            |
| ------ | -------------------------------- | ------------------------------------------------- |
| GET    | ops/staff[?status=Error]         | 200 counts by status, every staff member's row    |
| GET    | ops/staff/{staff_id}             | 200 one staff member's detail                     |
| POST   | ops/staff/{staff_id}/{command}   | 202 resync, reinitialise, disconnect, reconnect   |
| POST   | ops/resync  {"all": true} or     | 202 full resync of the tenant (roster refreshed   |
|        |   {"staff_ids": [...]}           |     first) or of the staff listed                 |
| GET    | ops/poison                       | 200 poison queue length and its oldest messages   |
| POST   | ops/poison/replay {"staff_id"?}  | 200 messages put back on staff-sync               |
| POST   | ops/data-key/rotate              | 200 records re-sealed under SYNC_DATA_KEY, what   |
|        |                                  |     is left (call again until `complete`)         |

Errors: `{"error": "<message>", "code": "<code>"}` with 400 `bad_input`, 401 `unauthenticated`,
403 `forbidden`, 404 `unknown_staff` / `unknown_command`, 409 `leased` (with `retry_after`) /
`wrong_state`, 503 `unavailable` / `authentication_off`.

Who may call which route is decided before (sync/ops/auth.py); every answer, refusals included,
is one audit record (sync/ops/audit.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync.errors import StorageUnavailable
from sync.ops.audit import command_of, record_request, staff_list_dimensions
from sync.ops.auth import Caller, MissingRole
from sync.ops.commands import StaffCommands
from sync.ops.data_key import DataKeyRotation
from sync.ops.errors import BadInput, OpsError, StaffLeased
from sync.ops.poison import PoisonQueue
from sync.ops.status import STATUSES, Status, StatusView
from sync.services import Services


@dataclass(frozen=True)
class OpsReply:
    status: int
    body: dict[str, Any]

    def json(self) -> str:
        return json.dumps(self.body)


class ResyncBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: bool = False
    staff_ids: list[str] | None = Field(default=None, min_length=1, max_length=10_000)


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: str | None = Field(default=None, min_length=1)
    limit: int = Field(default=1000, ge=1, le=10_000)


def parse_body(model: type[BaseModel], body: bytes) -> Any:
    """The JSON body as `model` (an empty body is `{}`); `BadInput` names the fields at fault,
    never the values."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as error:
        # Only the model's own field names: an unknown key is the caller's text, not ours.
        where = sorted(
            "an unknown field"
            if e["type"] == "extra_forbidden"
            else "/".join(str(p) for p in e["loc"]) or "body"
            for e in error.errors()
        )
        raise BadInput(f"invalid request body at {', '.join(dict.fromkeys(where))}") from None


def parse_status(value: str | None) -> Status | None:
    if not value:
        return None
    for status in STATUSES:
        if status.casefold() == value.casefold():
            return status
    raise BadInput(f"unknown status; one of {', '.join(STATUSES)}")


class OpsApi:
    def __init__(
        self,
        view: StatusView,
        commands: StaffCommands,
        poison: PoisonQueue,
        rotation: DataKeyRotation | None = None,
    ) -> None:
        self._view = view
        self._commands = commands
        self._poison = poison
        self._rotation = rotation

    @classmethod
    def from_services(cls, services: Services) -> OpsApi:
        return cls(
            StatusView(services.staff, services.links),
            StaffCommands(services.staff, services.queue, services.cycle),
            PoisonQueue(services.account, services.queue),
            DataKeyRotation(services.item_table, services.settings.content_cipher.current_key_id),
        )

    async def staff_list(self, params: Mapping[str, str], *, caller: Caller) -> OpsReply:
        async def run() -> BaseModel:
            return await self._view.overview(parse_status(params.get("status")))

        return await self._answer("ops_staff_list", 200, run, caller=caller)

    async def staff_detail(self, staff_id: str, *, caller: Caller) -> OpsReply:
        return await self._answer(
            "ops_staff_detail",
            200,
            lambda: self._view.detail(staff_id),
            caller=caller,
            staff_id=staff_id,
        )

    async def staff_command(self, staff_id: str, command: str, *, caller: Caller) -> OpsReply:
        return await self._answer(
            "ops_staff_command",
            202,
            lambda: self._commands.run(command, staff_id),
            caller=caller,
            staff_id=staff_id,
            command=command_of("ops_staff_command", command),
        )

    async def resync(self, body: bytes, *, caller: Caller) -> OpsReply:
        audited: dict[str, str | int] = {}

        async def run() -> BaseModel:
            request: ResyncBody = parse_body(ResyncBody, body)
            if request.all == (request.staff_ids is not None):
                raise BadInput('give either {"all": true} or {"staff_ids": [...]}')
            audited.update(staff_list_dimensions(request.staff_ids))
            return await self._commands.resync_all(None if request.all else request.staff_ids)

        return await self._answer("ops_resync", 202, run, caller=caller, audited=audited)

    async def poison_list(self, *, caller: Caller) -> OpsReply:
        return await self._answer("ops_poison_list", 200, self._poison.listing, caller=caller)

    async def poison_replay(self, body: bytes, *, caller: Caller) -> OpsReply:
        audited: dict[str, str | int] = {}

        async def run() -> BaseModel:
            request: ReplayBody = parse_body(ReplayBody, body)
            audited.update(staff_list_dimensions([request.staff_id] if request.staff_id else None))
            return await self._poison.replay(request.staff_id, request.limit)

        return await self._answer("ops_poison_replay", 200, run, caller=caller, audited=audited)

    async def rotate_data_key(self, *, caller: Caller) -> OpsReply:
        async def run() -> BaseModel:
            if self._rotation is None:
                raise BadInput("data key rotation is not available here")
            return await self._rotation.finish()

        return await self._answer("ops_rotate_data_key", 200, run, caller=caller)

    async def _answer(
        self,
        route: str,
        status: int,
        run: Callable[[], Awaitable[BaseModel]],
        *,
        caller: Caller,
        staff_id: str | None = None,
        command: str | None = None,
        audited: Mapping[str, str | int] | None = None,
    ) -> OpsReply:
        started = time.monotonic()
        try:
            reply = OpsReply(status, (await run()).model_dump(mode="json"))
        except OpsError as error:
            reply = error_reply(error)
        except StorageUnavailable:
            reply = OpsReply(
                503, {"error": "state store unavailable; retry later", "code": "unavailable"}
            )
        record_request(
            route,
            command=command or command_of(route),
            caller=caller,
            http_status=reply.status,
            outcome=_outcome(reply),
            staff_id=staff_id,
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            **(audited or {}),
        )
        return reply


def error_reply(error: OpsError) -> OpsReply:
    body: dict[str, Any] = {"error": error.message, "code": error.code}
    if isinstance(error, StaffLeased):
        body["retry_after"] = round(error.retry_after)
    return OpsReply(error.status, body)


def refusal_reply(refusal: OpsError, route: str, route_params: Mapping[str, str]) -> OpsReply:
    """The answer to a caller who may not call `route` (sync/ops/auth.py), audited like any
    other answer. What an anonymous caller put in the route is not recorded."""
    reply = error_reply(refusal)
    caller = refusal.caller if isinstance(refusal, MissingRole) else None
    record_request(
        route,
        command=command_of(route, route_params.get("command")),
        caller=caller,
        http_status=reply.status,
        outcome=_outcome(reply),
        staff_id=route_params.get("staff_id") if caller is not None else None,
    )
    return reply


def _outcome(reply: OpsReply) -> str:
    return "ok" if reply.status < 400 else str(reply.body.get("code"))
