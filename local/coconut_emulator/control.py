"""Control API under `/_emulator/...` (no auth): seed the roster, look inside, steer faults.

Not part of Coconut: it exists so tests and the demo can arrange and inspect the emulator from
another process. Every route here has an in-process twin on `CoconutEmulator`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from local.coconut_emulator.faults import FaultInjector, FaultPlan
from local.coconut_emulator.jsonapi import Problem, error_response
from local.coconut_emulator.paths import BadPathSegment, decode_segment
from local.coconut_emulator.state import CoconutState, StaffUser, UnknownUser


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[StaffUser]


class BadControlRequest(ValueError):
    pass


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as error:
        raise BadControlRequest("the body is not JSON") from error


def _validation_response(error: ValidationError) -> Response:
    # Field locations only: the input may hold seeded names and e-mails.
    problems = [
        Problem(item["msg"], pointer="/" + "/".join(str(part) for part in item["loc"]))
        for item in error.errors(include_input=False)
    ]
    return error_response(400, problems)


class ControlApi:
    def __init__(self, state: CoconutState, faults: FaultInjector) -> None:
        self.state = state
        self.faults = faults

    def routes(self) -> list[BaseRoute]:
        events = "/users/{user_id}/external-events"
        return [
            Route("/users", self.list_users, methods=["GET"]),
            Route("/users", self.replace_users, methods=["PUT"]),
            Route("/users", self.add_user, methods=["POST"]),
            Route(events, self.external_events, methods=["GET"]),
            Route(f"{events}/{{external_id}}", self.seed_external_event, methods=["PUT"]),
            Route("/requests", self.requests, methods=["GET"]),
            Route("/faults", self.get_faults, methods=["GET"]),
            Route("/faults", self.configure_faults, methods=["PUT"]),
            Route("/reset", self.reset, methods=["POST"]),
        ]

    async def list_users(self, request: Request) -> Response:
        return JSONResponse({"users": [user.model_dump() for user in self.state.users()]})

    async def replace_users(self, request: Request) -> Response:
        try:
            roster = Roster.model_validate(await _json_body(request))
        except BadControlRequest as error:
            return error_response(400, [Problem(str(error))])
        except ValidationError as error:
            return _validation_response(error)
        self.state.replace_users(roster.users)
        return JSONResponse({"users": len(roster.users)})

    async def add_user(self, request: Request) -> Response:
        try:
            user = StaffUser.model_validate(await _json_body(request))
        except BadControlRequest as error:
            return error_response(400, [Problem(str(error))])
        except ValidationError as error:
            return _validation_response(error)
        created = self.state.add_user(user)
        return JSONResponse(user.model_dump(), status_code=201 if created else 200)

    async def external_events(self, request: Request) -> Response:
        try:
            user_id = decode_segment(request.path_params["user_id"])
            return JSONResponse({"external_events": self.state.external_events(user_id)})
        except BadPathSegment as error:
            return error_response(400, [Problem(str(error))])
        except UnknownUser:
            return error_response(404, [Problem("no such user")])

    async def seed_external_event(self, request: Request) -> Response:
        """Store a `data` object as is, unvalidated: for state the service did not write."""
        try:
            user_id = decode_segment(request.path_params["user_id"])
            external_id = decode_segment(request.path_params["external_id"])
            data = await _json_body(request)
            if not isinstance(data, dict):
                raise BadControlRequest("the body must be the external event's data object")
            created = self.state.put_external_event(user_id, external_id, data)
        except (BadPathSegment, BadControlRequest) as error:
            return error_response(400, [Problem(str(error))])
        except UnknownUser:
            return error_response(404, [Problem("no such user")])
        return Response(status_code=201 if created else 204)

    async def requests(self, request: Request) -> Response:
        counts = [
            {**key._asdict(), "count": count}
            for key, count in sorted(self.state.request_counts().items())
        ]
        return JSONResponse({"requests": counts})

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.plan.model_dump())

    async def configure_faults(self, request: Request) -> Response:
        try:
            plan = FaultPlan.model_validate(await _json_body(request))
        except BadControlRequest as error:
            return error_response(400, [Problem(str(error))])
        except ValidationError as error:
            return _validation_response(error)
        self.faults.configure(plan)
        return JSONResponse(plan.model_dump())

    async def reset(self, request: Request) -> Response:
        """Back to an empty emulator: no users, no events, no counts, no faults."""
        self.state.reset()
        self.faults.configure(FaultPlan())
        return Response(status_code=204)
