"""Azure Functions entry point: triggers only.

Each function parses its input, calls one function in `sync/`, and maps the outcome to a
response; no business rule lives here.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from sync.cycle import PeriodicCycle
from sync.names import STAFF_SYNC_QUEUE
from sync.notifications.receiver import receive_lifecycle, receive_notifications
from sync.services import get_services
from sync.settings import load_settings
from sync.storage.account import StorageUnavailable
from sync.webhooks.receiver import receive_webhook
from sync.work import StaffSyncRequest

# Validated at start-up: a missing or invalid setting stops the app with one line naming it.
settings = load_settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("sync.functions")


def _json(status: int, body: object) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.route(route="coconut/webhooks", methods=["POST"])
async def coconut_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Coconut's appointment/absence changes (contracts/coconut-webhooks.md)."""
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
async def staff_sync(message: func.QueueMessage) -> None:
    """Bring one staff member's calendar (and busy time) in step."""
    request = StaffSyncRequest.model_validate_json(message.get_body())
    services = await get_services(settings)
    await services.staff_sync.run(request)


@app.timer_trigger(schedule=settings.sync_timer_schedule, arg_name="timer", run_on_startup=False)
async def staff_sync_timer(timer: func.TimerRequest) -> None:
    """The periodic cycle: roster refresh and one sync per enabled staff member."""
    services = await get_services(settings)
    await PeriodicCycle(services.records, services.coconut, services.queue).run()


@app.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Graph change notifications (authenticated by clientState; Graph cannot send keys)."""
    services = await get_services(settings)
    reply = await receive_notifications(
        dict(req.params),
        req.get_body(),
        client_state=settings.client_state,
        requester=services.queue,
    )
    return func.HttpResponse(reply.body, status_code=reply.status, mimetype=reply.content_type)


@app.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def graph_lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    """Graph lifecycle notifications for the subscriptions."""
    services = await get_services(settings)
    reply = await receive_lifecycle(
        dict(req.params),
        req.get_body(),
        client_state=settings.client_state,
        requester=services.queue,
        records=services.records,
    )
    return func.HttpResponse(reply.body, status_code=reply.status, mimetype=reply.content_type)
