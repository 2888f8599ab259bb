"""The control API under `/_emulator/`: seed users, switch their mailboxes on and off, act as a
person in Outlook (create, edit, delete, move between calendars), configure throttling and
faults, trigger lifecycle notifications, invalidate delta tokens, read counters and reset. Not
part of Graph: no throttling, no faults, no counters here."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.graph_emulator.calendar import TRANSACTION_CREATE_NEW, TRANSACTION_RETURN_ORIGINAL
from local.graph_emulator.errors import GraphError
from local.graph_emulator.faults import FaultRule
from local.graph_emulator.model import User
from local.graph_emulator.notifications import LIFECYCLE_EVENTS
from local.graph_emulator.rendering import View, render_event, render_full
from local.graph_emulator.schema import GraphSchema, InvalidBody
from local.graph_emulator.state import EmulatorState
from local.graph_emulator.throttling import ThrottleLimits
from local.graph_emulator.timezones import parse_instant

Endpoint = Callable[[Request], Awaitable[Response]]


def control_routes(state: EmulatorState, schema: GraphSchema) -> list[Route]:
    def guarded(endpoint: Endpoint) -> Endpoint:
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)
            except GraphError as error:
                return JSONResponse(error.body(), status_code=error.status)
            except InvalidBody as exc:
                return _problem(400, str(exc))
            except (KeyError, LookupError):
                return _problem(404, "not found")
            except (ValueError, TypeError) as exc:
                return _problem(400, str(exc))

        return run

    def user(request: Request) -> User:
        return state.user_or_raise(request.path_params["user"])

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def reset(_: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    async def list_users(_: Request) -> Response:
        return JSONResponse({"value": [u.to_control() for u in state.users()]})

    async def add_user(request: Request) -> Response:
        body = await _json(request)
        created = state.add_user(
            user_principal_name=str(body["userPrincipalName"]),
            mail=body.get("mail"),
            display_name=str(body.get("displayName", "")),
            time_zone=str(body.get("timeZone", "UTC")),
            user_id=body.get("id"),
            has_mailbox=bool(body.get("hasMailbox", True)),
            access_denied=bool(body.get("accessDenied", False)),
            mailbox_error=str(body.get("mailboxError", "MailboxNotEnabledForRESTAPI")),
        )
        return JSONResponse(created.to_control(), status_code=201)

    async def update_user(request: Request) -> Response:
        changed = state.update_user(request.path_params["user"], await _json(request))
        return JSONResponse(changed.to_control())

    async def events(request: Request) -> Response:
        folder = request.query_params.get("calendar")
        return JSONResponse({"value": state.full_events(user(request).id, folder)})

    async def calendars(request: Request) -> Response:
        with state.lock:
            folders = state.calendar(user(request).id).folders
            value = [f.to_control() for f in [*folders.calendars(), folders.deleted_items]]
        return JSONResponse({"value": value})

    async def add_calendar(request: Request) -> Response:
        body = await _json(request)
        folder = state.add_calendar(user(request).id, str(body.get("name", "")))
        return JSONResponse(folder.to_control(), status_code=201)

    async def calendar_view(request: Request) -> Response:
        owner = user(request)
        start = parse_instant(request.query_params["start"], "start")
        end = parse_instant(request.query_params["end"], "end")
        with state.lock:
            found = state.calendar(owner.id).view(start, end)
            value = [render_full(ev, owner) for ev in found]
        return JSONResponse({"value": value})

    async def seed(request: Request) -> Response:
        state.seed(await _json(request))
        return Response(status_code=204)

    async def person_create(request: Request) -> Response:
        owner = user(request)
        body = await _json(request)
        schema.validate("event", body)
        with state.lock:
            folder = _calendar_id(state, owner, request.query_params.get("calendar"))
            event, _ = state.create_event(owner.id, body, folder)
            return JSONResponse(render_event(event, owner, View()), status_code=201)

    async def person_update(request: Request) -> Response:
        owner = user(request)
        body = await _json(request)
        schema.validate("event", body, partial=True)
        with state.lock:
            event = state.update_event(owner.id, request.path_params["event"], body)
            return JSONResponse(render_event(event, owner, View()))

    async def person_delete(request: Request) -> Response:
        """To Deleted Items, as Outlook's Delete does; `?permanent=true` purges (Shift+Delete)."""
        owner, event_id = user(request), request.path_params["event"]
        if request.query_params.get("permanent", "").lower() == "true":
            state.permanently_delete_event(owner.id, event_id)
        else:
            state.delete_event(owner.id, event_id)
        return Response(status_code=204)

    async def person_move(request: Request) -> Response:
        owner = user(request)
        body = await _json(request)
        with state.lock:
            event = state.move_event(owner.id, request.path_params["event"], str(body["calendar"]))
            return JSONResponse(render_event(event, owner, View()))

    async def invalidate_delta(request: Request) -> Response:
        return JSONResponse({"invalidated": state.invalidate_delta(user(request).id)})

    async def get_throttling(_: Request) -> Response:
        return JSONResponse(state.throttle.limits.to_json())

    async def put_throttling(request: Request) -> Response:
        body = await _json(request)
        current = state.throttle.limits
        limits = ThrottleLimits(
            requests_per_window=int(body.get("requestsPerWindow", current.requests_per_window)),
            window_seconds=float(body.get("windowSeconds", current.window_seconds)),
            concurrency=int(body.get("concurrency", current.concurrency)),
            concurrency_retry_after=float(
                body.get("concurrencyRetryAfter", current.concurrency_retry_after)
            ),
        )
        state.throttle.configure(limits)
        if body.get("resetWindow"):
            state.throttle.reset()
        return JSONResponse(limits.to_json())

    async def get_faults(_: Request) -> Response:
        return JSONResponse(state.faults.to_json())

    async def put_faults(request: Request) -> Response:
        body = await _json(request)
        rules = [FaultRule.from_json(rule) for rule in body.get("rules", [])]
        state.faults.configure(rules, int(body.get("seed", 0)))
        return JSONResponse(state.faults.to_json())

    async def add_faults(request: Request) -> Response:
        body = await _json(request)
        raw = body.get("rules", [body] if "kind" in body else [])
        names = state.faults.add([FaultRule.from_json(rule) for rule in raw])
        return JSONResponse({"names": names}, status_code=201)

    async def clear_faults(_: Request) -> Response:
        state.faults.configure((), 0)
        return Response(status_code=204)

    async def clear_fault(request: Request) -> Response:
        if not state.faults.remove(request.path_params["name"]):
            raise KeyError(request.path_params["name"])
        return Response(status_code=204)

    async def counters(_: Request) -> Response:
        with state.lock:
            return JSONResponse(state.counters.to_json())

    async def subscriptions(_: Request) -> Response:
        return JSONResponse({"value": [s.to_graph() for s in state.subscriptions()]})

    async def lifecycle(request: Request) -> Response:
        body = await _json(request)
        event = str(body.get("lifecycleEvent", ""))
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"lifecycleEvent must be one of {', '.join(LIFECYCLE_EVENTS)}")
        state.send_lifecycle(request.path_params["sub"], event)
        return Response(status_code=202)

    async def notifications(_: Request) -> Response:
        return JSONResponse({"value": [d.to_json() for d in state.outbox.deliveries()]})

    async def get_settings(_: Request) -> Response:
        return JSONResponse(state.settings.to_json())

    async def put_settings(request: Request) -> Response:
        body = await _json(request)
        policy = body.get("transactionIdAfterDelete")
        if policy is not None:
            if policy not in (TRANSACTION_RETURN_ORIGINAL, TRANSACTION_CREATE_NEW):
                raise ValueError("transactionIdAfterDelete must be returnOriginal or createNew")
            state.settings.transaction_id_after_delete = policy
        if "validationTimeoutSeconds" in body:
            state.settings.validation_timeout_seconds = float(body["validationTimeoutSeconds"])
        return JSONResponse(state.settings.to_json())

    base = "/_emulator"
    table: list[tuple[str, Endpoint, list[str]]] = [
        ("/health", health, ["GET"]),
        ("/reset", reset, ["POST"]),
        ("/seed", seed, ["POST"]),
        ("/users", list_users, ["GET"]),
        ("/users", add_user, ["POST"]),
        ("/users/{user}", update_user, ["PATCH"]),
        ("/users/{user}/calendars", calendars, ["GET"]),
        ("/users/{user}/calendars", add_calendar, ["POST"]),
        ("/users/{user}/events", events, ["GET"]),
        ("/users/{user}/events", person_create, ["POST"]),
        ("/users/{user}/events/{event}", person_update, ["PATCH"]),
        ("/users/{user}/events/{event}", person_delete, ["DELETE"]),
        ("/users/{user}/events/{event}/move", person_move, ["POST"]),
        ("/users/{user}/calendar-view", calendar_view, ["GET"]),
        ("/users/{user}/delta-tokens/invalidate", invalidate_delta, ["POST"]),
        ("/throttling", get_throttling, ["GET"]),
        ("/throttling", put_throttling, ["PUT"]),
        ("/faults", get_faults, ["GET"]),
        ("/faults", put_faults, ["PUT"]),
        ("/faults", add_faults, ["POST"]),
        ("/faults", clear_faults, ["DELETE"]),
        ("/faults/{name}", clear_fault, ["DELETE"]),
        ("/counters", counters, ["GET"]),
        ("/subscriptions", subscriptions, ["GET"]),
        ("/subscriptions/{sub}/lifecycle", lifecycle, ["POST"]),
        ("/notifications", notifications, ["GET"]),
        ("/settings", get_settings, ["GET"]),
        ("/settings", put_settings, ["PUT"]),
    ]
    return [Route(base + path, guarded(fn), methods=methods) for path, fn, methods in table]


def _calendar_id(state: EmulatorState, owner: User, key: str | None) -> str | None:
    if not key:
        return None
    folder = state.calendar(owner.id).folders.find(key)
    if folder is None or not folder.is_calendar:
        raise KeyError(key)
    return folder.id


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _problem(status: int, message: str) -> Response:
    return JSONResponse({"error": {"code": "ControlError", "message": message}}, status_code=status)
