"""One trace per change: the webhook's span, the queue message, the worker's run and its Graph
calls share one trace id, read back from the exported spans."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from local.host.invocation import host_traceparent
from sync.errors import FunctionFailed, StorageUnavailable
from sync.graph.calendar import GraphCalendar
from sync.graph.calls import GraphCaller
from sync.graph.client import build_graph_client
from sync.http_tracing import TracedTransport
from sync.telemetry import staff_context
from sync.telemetry_pipeline import Pipeline
from sync.trace_file import SpanFile, read_spans
from sync.tracing import current_traceparent, invocation_span, message_span, remote_context
from sync.work import StaffSyncRequest
from tests.sync.conftest import Exported
from tests.sync.loopback_settings import loopback_settings

STAFF_EMAIL = "jane.doe@bank.example"
MAILBOX_ID = "4f1c2e3a-0000-4000-8000-000000000001"


def _graph(request: httpx.Request) -> httpx.Response:
    """Graph's answers to the mailbox lookup and the mailbox settings, each with the request id
    Graph gives every answer."""
    if request.url.path.endswith("/mailboxSettings"):
        body: dict[str, Any] = {"timeZone": "Eastern Standard Time"}
    else:
        body = {"value": [{"id": MAILBOX_ID, "mail": STAFF_EMAIL}]}
    return httpx.Response(200, json=body, headers={"request-id": f"graph-{request.url.path}"})


def _trace_id(traceparent: str) -> int:
    return int(traceparent.split("-")[1], 16)


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


async def _worker_run(body: str, host: str) -> None:
    """What the queue function does with the message: parse it, process it in a span, call
    Graph for the staff member."""
    request = StaffSyncRequest.model_validate_json(body)
    with (
        message_span(
            "staff_sync",
            host_traceparent=host,
            sender_traceparent=request.traceparent,
            continue_sender=request.continues_trace,
            attributes={"staff_id": request.staff_id, "trigger": request.reason},
        ),
        staff_context(request.staff_id),
    ):
        graph = build_graph_client(loopback_settings(), transport=httpx.MockTransport(_graph))
        await GraphCalendar(graph, GraphCaller()).find_user(STAFF_EMAIL)


async def test_one_trace_from_the_webhook_through_the_queue_to_the_graph_call(
    exported: Exported,
) -> None:
    webhook_host = host_traceparent()  # the host's span for the webhook's HTTP invocation
    with invocation_span("coconut_webhook", host_traceparent=webhook_host):
        message = StaffSyncRequest(staff_id="U-42", reason="webhook").model_dump_json()
    worker_host = host_traceparent()  # the host's span for the queue invocation: its own trace
    await _worker_run(message, worker_host)

    spans = exported.spans.get_finished_spans()
    webhook = _named(spans, "coconut_webhook")
    worker = _named(spans, "staff_sync")
    lookup, settings = [s for s in spans if s.kind is SpanKind.CLIENT]
    trace_id = _trace_id(webhook_host)
    assert {s.context.trace_id for s in (webhook, worker, lookup, settings)} == {trace_id}
    assert _parent(webhook) == int(webhook_host.split("-")[2], 16)
    assert _parent(worker) == webhook.context.span_id
    assert _parent(lookup) == _parent(settings) == worker.context.span_id
    assert (lookup.name, settings.name) == (
        "GET /v1.0/users",
        "GET /v1.0/users/{id}/mailboxSettings",
    )
    # The host's own record of the queue invocation is found through the link.
    [link] = worker.links
    assert link.context.trace_id == _trace_id(worker_host)
    # What Microsoft support asks for, and whose mailbox it was.
    attributes = dict(lookup.attributes or {})
    assert attributes["graph.request_id"] == "graph-/v1.0/users"
    assert attributes["graph.client_request_id"]
    assert attributes["staff_id"] == "U-42"
    assert attributes["http.response.status_code"] == 200


async def test_the_timers_fan_out_runs_in_the_hosts_trace_linked_to_the_cycle(
    exported: Exported,
) -> None:
    with invocation_span("staff_sync_timer", host_traceparent=host_traceparent()) as timer:
        message = StaffSyncRequest(staff_id="U-42", reason="timer").model_dump_json()
    worker_host = host_traceparent()
    await _worker_run(message, worker_host)
    worker = _named(exported.spans.get_finished_spans(), "staff_sync")
    assert worker.context.trace_id == _trace_id(worker_host)
    [link] = worker.links
    assert link.context.span_id == timer.get_span_context().span_id


async def test_a_message_sent_before_traces_were_carried_still_runs_in_the_hosts_trace(
    exported: Exported,
) -> None:
    old = json.dumps({"staff_id": "U-42", "reason": "webhook"})
    assert StaffSyncRequest.model_validate_json(old).traceparent is None
    worker_host = host_traceparent()
    await _worker_run(old, worker_host)
    worker = _named(exported.spans.get_finished_spans(), "staff_sync")
    assert worker.context.trace_id == _trace_id(worker_host)
    assert worker.links == ()


async def test_no_span_holds_the_staff_members_address(exported: Exported) -> None:
    await _worker_run(StaffSyncRequest(staff_id="U-42", reason="ops").model_dump_json(), "")
    recorded: list[Any] = [
        (s.name, dict(s.attributes or {})) for s in exported.spans.get_finished_spans()
    ]
    text = json.dumps(recorded)
    assert "jane.doe" not in text
    assert "bank.example" not in text
    lookup = next(a for _, a in recorded if "url.full" in a)
    assert (
        lookup["url.full"] == "http://127.0.0.1:8081/v1.0/users?$filter=redacted&$select=redacted"
    )


def test_a_put_back_request_keeps_its_trace(exported: Exported) -> None:
    with invocation_span("coconut_webhook", host_traceparent=None):
        request = StaffSyncRequest(staff_id="U-42", reason="webhook")
        inside = current_traceparent()
    assert request.traceparent == inside
    assert request.retried().traceparent == inside
    assert StaffSyncRequest(staff_id="U-42", reason="webhook").traceparent is None  # no span


def test_a_malformed_traceparent_is_ignored() -> None:
    assert remote_context("not a traceparent") is None
    assert remote_context("00-" + "0" * 32 + "-" + "1" * 16 + "-01") is None
    assert remote_context(None) is None


def test_the_trace_file_holds_each_finished_span_as_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "local-data" / "spans.jsonl"
    pipeline = Pipeline(span_processors=[SimpleSpanProcessor(SpanFile(path))])
    tracer = pipeline.tracer
    with (
        tracer.start_as_current_span("coconut_webhook", attributes={"staff_id": "U-42"}),
        tracer.start_as_current_span("GET /v1.0/users", kind=SpanKind.CLIENT),
    ):
        pass
    pipeline.shutdown()
    call, webhook = read_spans(path)
    assert (webhook["name"], call["name"], call["kind"]) == (
        "coconut_webhook",
        "GET /v1.0/users",
        "CLIENT",
    )
    assert call["trace_id"] == webhook["trace_id"]
    assert call["parent_span_id"] == webhook["span_id"]
    assert webhook["parent_span_id"] is None
    assert webhook["attributes"] == {"staff_id": "U-42"}


async def test_a_failed_span_keeps_the_exception_type_and_never_its_message(
    exported: Exported,
) -> None:
    """An exception's message may quote a payload (a customer's name, an answer): the function
    spans and the HTTP dependency spans say only which exception ended them, and what leaves the
    function for the host to report is `FunctionFailed`, the type without the message."""
    secret = "Jane Doe's answer: mortgage"

    def failing(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(secret)

    async def webhook() -> None:
        transport = TracedTransport(httpx.MockTransport(failing), peer="graph")
        with invocation_span("coconut_webhook", host_traceparent=None):
            async with httpx.AsyncClient(transport=transport) as client:
                await client.get("http://graph.local/v1.0/users")

    def worker() -> None:
        with message_span(
            "staff_worker", host_traceparent=None, sender_traceparent=None, continue_sender=True
        ):
            raise LookupError(secret)

    with pytest.raises(FunctionFailed) as from_webhook:
        await webhook()
    with pytest.raises(FunctionFailed) as from_worker:
        worker()

    reported = [
        "".join(traceback.format_exception(caught.value)) for caught in (from_webhook, from_worker)
    ]
    assert [str(caught.value) for caught in (from_webhook, from_worker)] == [
        "ReadError (message withheld)",
        "LookupError (message withheld)",
    ]
    assert "Jane Doe" not in "".join(reported), "neither the message nor a chained cause"
    assert "await client.get" in reported[0], "the traceback still shows where it failed"
    spans = {s.name: s for s in exported.spans.get_finished_spans()}
    assert {name: s.status.description for name, s in spans.items()} == {
        "GET /v1.0/users": "ReadError",
        "coconut_webhook": "ReadError",
        "staff_worker": "LookupError",
    }
    assert all(s.events == () for s in spans.values()), "no exception event with its message"
    assert "Jane Doe" not in json.dumps([s.to_json() for s in spans.values()])


def test_the_services_own_failures_leave_a_function_as_they_are(exported: Exported) -> None:
    """Their messages hold identifiers only, and say what an operator needs."""
    with (
        pytest.raises(StorageUnavailable, match="storage answered 503"),
        invocation_span("staff_sync_timer", host_traceparent=None),
    ):
        raise StorageUnavailable("storage answered 503")
