"""Control API under `/_emulator/...` (no auth): seed the roster, change Coconut's record without
a webhook, look inside, steer faults.

Not part of Coconut: it exists so tests and the demo can arrange and inspect the emulator from
another process. Every route here has an in-process twin on `CoconutEmulator`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from local.coconut_emulator.changes import (
    AbsenceDraft,
    AbsenceUpdate,
    AppointmentDraft,
    AppointmentUpdate,
    SilentChanges,
    UnknownStaff,
)
from local.coconut_emulator.faults import FaultInjector, FaultPlan
from local.coconut_emulator.jsonapi import Problem, error_response
from local.coconut_emulator.paths import BadPathSegment, decode_segment
from local.coconut_emulator.state import CoconutState, StaffUser, UnknownUser
from local.coconut_emulator.webhooks.coconut import GoneError
from local.coconut_emulator.webhooks.payloads import Envelope


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[StaffUser]


class CalendarSyncSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    calendar_sync: bool


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


async def _record_change(change: Callable[[], Awaitable[Envelope]], status: int = 200) -> Response:
    """Run a change of the record and answer the envelope it would have sent, or the problem."""
    try:
        envelope = await change()
    except BadControlRequest as error:
        return error_response(400, [Problem(str(error))])
    except ValidationError as error:
        return _validation_response(error)
    except UnknownStaff as error:
        return error_response(400, [Problem(str(error), pointer=error.pointer)])
    except BadPathSegment as error:
        return error_response(400, [Problem(str(error))])
    except GoneError:
        return error_response(404, [Problem("no such item, or it was deleted")])
    except ValueError as error:  # the payload builders' fixed texts: what the contract rules out
        return error_response(400, [Problem(str(error))])
    return JSONResponse(envelope, status_code=status)


def _path_id(request: Request, name: str) -> str:
    return decode_segment(request.path_params[name])


class ControlApi:
    def __init__(
        self, state: CoconutState, faults: FaultInjector, changes: SilentChanges | None = None
    ) -> None:
        self.state = state
        self.faults = faults
        self.changes = changes or SilentChanges(state)

    def routes(self) -> list[BaseRoute]:
        events = "/users/{user_id}/external-events"
        appointment = "/appointments/{appointment_id}"
        absence = "/unavailabilities/{unavailability_id}"
        return [
            Route("/users", self.list_users, methods=["GET"]),
            Route("/users", self.replace_users, methods=["PUT"]),
            Route("/users", self.add_user, methods=["POST"]),
            Route("/users/{user_id}", self.set_calendar_sync, methods=["PATCH"]),
            Route(events, self.external_events, methods=["GET"]),
            Route(f"{events}/{{external_id}}", self.seed_external_event, methods=["PUT"]),
            Route("/users/{user_id}/appointments", self.appointments_of, methods=["GET"]),
            Route("/users/{user_id}/unavailabilities", self.unavailabilities_of, methods=["GET"]),
            Route("/appointments", self.book, methods=["POST"]),
            Route(appointment, self.update_appointment, methods=["PATCH"]),
            Route(appointment, self.delete_appointment, methods=["DELETE"]),
            Route("/unavailabilities", self.record_absence, methods=["POST"]),
            Route(absence, self.change_absence, methods=["PATCH"]),
            Route(absence, self.delete_absence, methods=["DELETE"]),
            Route("/envelopes", self.apply_envelope, methods=["POST"]),
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

    async def set_calendar_sync(self, request: Request) -> Response:
        try:
            user_id = decode_segment(request.path_params["user_id"])
            switch = CalendarSyncSwitch.model_validate(await _json_body(request))
            user = self.state.set_calendar_sync(user_id, switch.calendar_sync)
        except (BadPathSegment, BadControlRequest) as error:
            return error_response(400, [Problem(str(error))])
        except ValidationError as error:
            return _validation_response(error)
        except UnknownUser:
            return error_response(404, [Problem("no such user")])
        return JSONResponse(user.model_dump())

    # --- Coconut's record: read it, change it without a webhook -----------------------------
    # Read by staff id whether or not the id is on the roster: an item can name someone who is not.

    async def appointments_of(self, request: Request) -> Response:
        try:
            user_id = _path_id(request, "user_id")
        except BadPathSegment as error:
            return error_response(400, [Problem(str(error))])
        return JSONResponse({"appointments": self.state.record.appointments_of(user_id)})

    async def unavailabilities_of(self, request: Request) -> Response:
        try:
            user_id = _path_id(request, "user_id")
        except BadPathSegment as error:
            return error_response(400, [Problem(str(error))])
        return JSONResponse({"unavailabilities": self.state.record.unavailabilities_of(user_id)})

    async def book(self, request: Request) -> Response:
        async def change() -> Envelope:
            draft = AppointmentDraft.model_validate(await _json_body(request))
            return self.changes.book(draft)

        return await _record_change(change, status=201)

    async def update_appointment(self, request: Request) -> Response:
        async def change() -> Envelope:
            appointment_id = _path_id(request, "appointment_id")
            update = AppointmentUpdate.model_validate(await _json_body(request))
            return self.changes.update_appointment(appointment_id, update)

        return await _record_change(change)

    async def delete_appointment(self, request: Request) -> Response:
        async def change() -> Envelope:
            return self.changes.delete_appointment(_path_id(request, "appointment_id"))

        return await _record_change(change)

    async def record_absence(self, request: Request) -> Response:
        async def change() -> Envelope:
            draft = AbsenceDraft.model_validate(await _json_body(request))
            return self.changes.record_absence(draft)

        return await _record_change(change, status=201)

    async def change_absence(self, request: Request) -> Response:
        async def change() -> Envelope:
            absence_id = _path_id(request, "unavailability_id")
            update = AbsenceUpdate.model_validate(await _json_body(request))
            return self.changes.change_absence(absence_id, update)

        return await _record_change(change)

    async def delete_absence(self, request: Request) -> Response:
        async def change() -> Envelope:
            return self.changes.delete_absence(_path_id(request, "unavailability_id"))

        return await _record_change(change)

    async def apply_envelope(self, request: Request) -> Response:
        """Record what a webhook envelope says, as the sender does before delivering it."""
        try:
            envelope = await _json_body(request)
        except BadControlRequest as error:
            return error_response(400, [Problem(str(error))])
        if not isinstance(envelope, dict):
            return error_response(400, [Problem("the body must be an envelope object")])
        return JSONResponse({"recorded": self.state.record.apply(envelope)})

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
        """Back to an empty emulator: no users, no events, no record, no counts, no faults."""
        self.state.reset()
        self.changes.reset()
        self.faults.configure(FaultPlan())
        return Response(status_code=204)
