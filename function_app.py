"""Azure Functions entry point: triggers only.

Each function parses its input, calls one function in `sync/`, and maps the outcome to a
response; no business rule lives here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager

import azure.functions as func
from opentelemetry.trace import Span

from sync.errors import StorageUnavailable
from sync.names import STAFF_SYNC_QUEUE
from sync.notifications.receiver import (
    NotificationReply,
    receive_lifecycle,
    receive_notifications,
    validation_reply,
)
from sync.ops.api import OpsApi, OpsReply, refusal_reply
from sync.ops.auth import Caller, admit
from sync.ops.errors import OpsError
from sync.services import get_services
from sync.settings import load_settings
from sync.telemetry import configure_telemetry
from sync.tracing import invocation_span, message_span
from sync.webhooks.receiver import receive_webhook
from sync.work import parse_work, work_attributes

# Validated at start-up: a missing or invalid setting stops the app with one line naming it.
settings = load_settings()
# Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set, else the console. The
# service owns its telemetry: the platform's worker is not asked to configure any.
configure_telemetry()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("sync.functions")


def _json(status: int, body: object) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _plain(reply: NotificationReply) -> func.HttpResponse:
    return func.HttpResponse(reply.body, status_code=reply.status, mimetype=reply.content_type)


def _span(context: func.Context) -> AbstractContextManager[Span]:
    """The invocation's span, a child of the host's invocation span (sync.tracing)."""
    host = context.trace_context
    return invocation_span(
        context.function_name, host_traceparent=host.trace_parent, host_tracestate=host.trace_state
    )


@app.route(route="coconut/webhooks", methods=["POST"])
async def coconut_webhook(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Coconut's appointment/absence changes (contracts/coconut-webhooks.md)."""
    with _span(context):
        try:
            services = await get_services(settings)
        except StorageUnavailable:
            return _json(503, {"error": "state store unavailable; retry later"})
        reply = await receive_webhook(
            dict(req.headers),
            req.get_body(),
            secrets=settings.webhook_secrets,
            recorder=services.items,
            requester=services.queue,
        )
    return _json(reply.status, reply.body)


@app.queue_trigger(
    arg_name="message", queue_name=STAFF_SYNC_QUEUE, connection="AzureWebJobsStorage"
)
async def staff_worker(message: func.QueueMessage, context: func.Context) -> None:
    """Bring one staff member's calendar (and busy time) in step, or a batch's staff members."""
    work = parse_work(message.get_body())
    host = context.trace_context
    with message_span(
        context.function_name,
        host_traceparent=host.trace_parent,
        host_tracestate=host.trace_state,
        sender_traceparent=work.traceparent,
        continue_sender=work.continues_trace,
        attributes={
            **work_attributes(work),
            "queue": STAFF_SYNC_QUEUE,
            "message_id": message.id or "",
            "dequeue_count": message.dequeue_count or 0,
        },
    ):
        services = await get_services(settings)
        await services.worker.handle(work)


@app.timer_trigger(schedule=settings.sync_timer_schedule, arg_name="timer", run_on_startup=False)
async def staff_sync_timer(timer: func.TimerRequest, context: func.Context) -> None:
    """The periodic cycle: roster refresh and one sync per enabled staff member."""
    with _span(context):
        await (await get_services(settings)).run_timer()


@app.timer_trigger(
    schedule=settings.coconut_reconcile_schedule, arg_name="timer", run_on_startup=False
)
async def coconut_reconcile_timer(timer: func.TimerRequest, context: func.Context) -> None:
    """The scheduled repair: every synced staff member's listings read from Coconut, spread
    over the period (what lost webhooks left behind)."""
    with _span(context):
        await (await get_services(settings)).run_repair()


@app.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def graph_notifications(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Graph change notifications (authenticated by clientState; Graph cannot send keys)."""
    # The validation handshake is answered before anything touches storage: Graph allows 10 s,
    # and a cold start must make it.
    if (handshake := validation_reply(dict(req.params))) is not None:
        return _plain(handshake)
    with _span(context):
        services = await get_services(settings)
        reply = await receive_notifications(
            dict(req.params),
            req.get_body(),
            client_state=settings.client_state,
            requester=services.queue,
        )
    return _plain(reply)


@app.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def graph_lifecycle(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Graph lifecycle notifications for the subscriptions."""
    if (handshake := validation_reply(dict(req.params))) is not None:
        return _plain(handshake)
    with _span(context):
        services = await get_services(settings)
        reply = await receive_lifecycle(
            dict(req.params),
            req.get_body(),
            client_state=settings.client_state,
            requester=services.queue,
            records=services.staff,
        )
    return _plain(reply)


# ----- Ops API -------------------------------------------------------------------------------
# What an administrator sees and steers (docs/operations.md). No function key: the caller signs in
# with Microsoft Entra ID, App Service Authentication validates the token, and each route checks
# the caller's app roles (sync/ops/auth.py) before anything else. Routes under "ops/" because the
# host reserves "admin/". Each function parses, calls one OpsApi method and returns its JSON.

OpsCall = Callable[[OpsApi, Caller], Awaitable[OpsReply]]


def _ops_reply(reply: OpsReply) -> func.HttpResponse:
    return func.HttpResponse(reply.json(), status_code=reply.status, mimetype="application/json")


async def _ops(req: func.HttpRequest, context: func.Context, call: OpsCall) -> func.HttpResponse:
    """Admit the caller to this route (Sync.Read or Sync.Operate), then answer."""
    with _span(context):
        try:
            caller = admit(req.headers, context.function_name, os.environ)
        except OpsError as refusal:
            return _ops_reply(refusal_reply(refusal, context.function_name, req.route_params))
        api = OpsApi.from_services(await get_services(settings))
        return _ops_reply(await call(api, caller))


@app.route(route="ops/staff", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def ops_staff_list(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Every staff member with status, reason, last sync and pending work; counts by status."""
    return await _ops(req, context, lambda api, caller: api.staff_list(req.params, caller=caller))


@app.route(route="ops/staff/{staff_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def ops_staff_detail(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """One staff member in detail."""
    staff_id = req.route_params["staff_id"]
    return await _ops(req, context, lambda api, caller: api.staff_detail(staff_id, caller=caller))


@app.route(
    route="ops/staff/{staff_id}/{command}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS
)
async def ops_staff_command(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """resync, reinitialise, disconnect or reconnect one staff member."""
    staff_id, command = req.route_params["staff_id"], req.route_params["command"]
    return await _ops(
        req, context, lambda api, caller: api.staff_command(staff_id, command, caller=caller)
    )


@app.route(route="ops/resync", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def ops_resync(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Full resync of the whole tenant (a first backfill) or of the staff listed."""
    body = req.get_body()
    return await _ops(req, context, lambda api, caller: api.resync(body, caller=caller))


@app.route(route="ops/poison", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def ops_poison_list(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """The poison queue's length and its oldest messages."""
    return await _ops(req, context, lambda api, caller: api.poison_list(caller=caller))


@app.route(route="ops/poison/replay", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def ops_poison_replay(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Put poison messages (all, or one staff member's) back on the work queue."""
    body = req.get_body()
    return await _ops(req, context, lambda api, caller: api.poison_replay(body, caller=caller))


@app.route(route="ops/data-key/rotate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def ops_rotate_data_key(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Re-seal stored content under SYNC_DATA_KEY (finishes a data key rotation)."""
    return await _ops(req, context, lambda api, caller: api.rotate_data_key(caller=caller))
