"""The Coconut API surface the sync service calls (contracts/coconut-api.md).

`Gateway` does what sits in front of every route (key check, `Accept`, injected faults, request
counting); `CoconutApi` holds the routes themselves.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Message, Receive, Scope, Send

from local.coconut_emulator.external_events import body_problems, external_id_problems
from local.coconut_emulator.faults import FaultInjector
from local.coconut_emulator.jsonapi import (
    BadPageParameter,
    Problem,
    error_response,
    page_document,
    page_request,
)
from local.coconut_emulator.listings import BadFilter, end_after
from local.coconut_emulator.paths import BadPathSegment, decode_segment
from local.coconut_emulator.record import APPOINTMENTS, UNAVAILABILITIES, Kind
from local.coconut_emulator.state import CoconutState, UnknownUser

UNMATCHED_ROUTE = "<unmatched>"
_JSON_RANGES = frozenset({"application/json", "application/*", "*/*"})


def accepts_json(accept: str | None) -> bool:
    """True when the `Accept` header admits application/json with a non-zero quality.

    A missing header counts as a refusal: the contract says every request sends
    `Accept: application/json`, and the emulator holds clients to it.
    """
    if accept is None:
        return False
    for media_range in accept.split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        if media_type.lower() not in _JSON_RANGES:
            continue
        quality = next(
            (p.split("=", 1)[1].strip() for p in parameters if p.lower().startswith("q=")), "1"
        )
        try:
            if float(quality) > 0:
                return True
        except ValueError:
            continue
    return False


def is_json_content_type(content_type: str | None) -> bool:
    return (
        content_type is not None
        and content_type.split(";", 1)[0].strip().lower() == "application/json"
    )


class Gateway:
    """ASGI app in front of the API routes: refuse, fault or pass on, and count every request."""

    def __init__(
        self, router: Router, state: CoconutState, faults: FaultInjector, api_key: str
    ) -> None:
        self.router = router
        self.state = state
        self.faults = faults
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        route = route_template(self.router.routes, scope)
        counted = False

        async def counting_send(message: Message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start" and not counted:
                # Counted before the answer goes out: a client that has its answer can rely on
                # the counters already showing the request.
                self.state.count_request(scope["method"], route, int(message["status"]))
                counted = True
            await send(message)

        try:
            refusal = await self._refusal(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, counting_send)
            else:
                try:
                    await self.router(scope, receive, counting_send)
                except HTTPException as error:  # no such route (404) or method (405)
                    response = error_response(
                        error.status_code, [Problem(error.detail)], headers=error.headers
                    )
                    await response(scope, receive, counting_send)
        finally:
            if not counted:
                self.state.count_request(scope["method"], route, 500)

    async def _refusal(self, request: Request) -> Response | None:
        if self.faults.latency_seconds > 0:
            await asyncio.sleep(self.faults.latency_seconds)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return error_response(
                401,
                [Problem("a bearer API key is required")],
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            return error_response(403, [Problem("the API key is not valid")])
        if not accepts_json(request.headers.get("accept")):
            return error_response(406, [Problem("Accept must admit application/json")])
        fault = self.faults.next_fault()
        if fault is None:
            return None
        if fault.retry_after_seconds is not None:
            return error_response(
                fault.status,
                [Problem("too many requests")],
                headers={"Retry-After": str(fault.retry_after_seconds)},
            )
        return error_response(fault.status, [Problem("injected transient fault")])


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    """The path template a request matches (e.g. `/users/{user_id}/external-events`)."""
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match is not Match.NONE and isinstance(route, Route):
            return route.path
    return UNMATCHED_ROUTE


class CoconutApi:
    def __init__(self, state: CoconutState, faults: FaultInjector, api_key: str) -> None:
        self.state = state
        self.faults = faults
        self.gateway = Gateway(Router(self._routes()), state, faults, api_key)

    def _routes(self) -> list[BaseRoute]:
        events = "/users/{user_id}/external-events"
        return [
            Route("/users", self.list_users, methods=["GET"]),
            Route("/users/{user_id}/appointments", self.list_appointments, methods=["GET"]),
            Route("/users/{user_id}/unavailabilities", self.list_unavailabilities, methods=["GET"]),
            Route(events, self.list_external_events, methods=["GET"]),
            Route(f"{events}/{{external_id}}", self.put_external_event, methods=["PUT"]),
            Route(f"{events}/{{external_id}}", self.delete_external_event, methods=["DELETE"]),
        ]

    async def list_users(self, request: Request) -> Response:
        try:
            page = page_request(request.query_params)
        except BadPageParameter as error:
            return error_response(400, [error.problem])
        users = [user.as_resource() for user in self.state.users()]
        return JSONResponse(page_document(users, page))

    async def list_appointments(self, request: Request) -> Response:
        return self._listing(request, APPOINTMENTS)

    async def list_unavailabilities(self, request: Request) -> Response:
        return self._listing(request, UNAVAILABILITIES)

    def _listing(self, request: Request, kind: Kind) -> Response:
        try:
            user_id = decode_segment(request.path_params["user_id"])
            page = page_request(request.query_params)
        except BadPathSegment as error:
            return error_response(400, [Problem(str(error))])
        except BadPageParameter as error:
            return error_response(400, [error.problem])
        if not self.state.has_user(user_id):
            return _unknown_user()
        try:
            instant = end_after(request.query_params)
        except BadFilter as error:
            return error_response(422, [error.problem])
        live = self.faults.listing_race
        return JSONResponse(self.state.listings.page(kind, user_id, instant, page, live=live))

    async def list_external_events(self, request: Request) -> Response:
        try:
            user_id = decode_segment(request.path_params["user_id"])
            page = page_request(request.query_params)
        except BadPathSegment as error:
            return error_response(400, [Problem(str(error))])
        except BadPageParameter as error:
            return error_response(400, [error.problem])
        try:
            events = list(self.state.external_events(user_id).values())
        except UnknownUser:
            return _unknown_user()
        return JSONResponse(page_document(events, page))

    async def put_external_event(self, request: Request) -> Response:
        try:
            user_id = decode_segment(request.path_params["user_id"])
            external_id = decode_segment(request.path_params["external_id"])
        except BadPathSegment as error:
            return error_response(400, [Problem(str(error))])
        if not self.state.has_user(user_id):
            return _unknown_user()
        if not is_json_content_type(request.headers.get("content-type")):
            return error_response(415, [Problem("the body must be application/json")])
        try:
            body: Any = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return error_response(422, [Problem("the body is not JSON", pointer="")])
        problems = external_id_problems(external_id) + body_problems(body, external_id)
        if problems:
            return error_response(422, problems)
        data: dict[str, Any] = body["data"]
        try:
            created = self.state.put_external_event(user_id, external_id, data)
        except UnknownUser:  # removed from the roster while the body was read
            return _unknown_user()
        return JSONResponse({"data": data}, status_code=201 if created else 200)

    async def delete_external_event(self, request: Request) -> Response:
        try:
            user_id = decode_segment(request.path_params["user_id"])
            external_id = decode_segment(request.path_params["external_id"])
        except BadPathSegment as error:
            return error_response(400, [Problem(str(error))])
        try:
            existed = self.state.delete_external_event(user_id, external_id)
        except UnknownUser:
            return _unknown_user()
        if not existed:
            return error_response(404, [Problem("no such external event")])
        return Response(status_code=204)


def _unknown_user() -> Response:
    return error_response(404, [Problem("no such user")])
