"""One trace per change: from the request that made it, through the queue, to every Graph and
Coconut call.

Application Insights groups telemetry by trace id (`operation_Id`). The Functions host hands
every invocation the W3C trace context of its own invocation span; each function's span is its
child, so the records made inside sit under the host's request. Queue messages carry the
`traceparent` of the span that sent them (`StaffSyncRequest.traceparent`): the worker's run
continues the trace of the change that asked for it (webhook, change notification, ops command)
and links to the host's invocation. Runs the timer fans out do the opposite — a child of the
host's invocation, linked to the timer — so one cycle does not make one trace of every mailbox.

A span that ends in an exception keeps the exception's type, never its message (`service_span`):
a third-party exception may quote a payload, and a payload is a bank's customer data. For the
same reason a function's span hands the host (which reports a failed invocation's exception)
the service's own exceptions as they are, and any other as `FunctionFailed`, its type only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from sync.errors import FunctionFailed, SyncError
from sync.telemetry_pipeline import tracer

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
# What a span link stands for, so the trace file and the portal can say it.
LINK_ROLE: Final = "link_role"

_propagator = TraceContextTextMapPropagator()

Attributes = Mapping[str, AttributeValue]


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span; None outside one (or with no pipeline)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def remote_context(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The context a `traceparent` names, or None when it is absent or malformed."""
    if not traceparent:
        return None
    carrier = {TRACEPARENT: traceparent}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    context = _propagator.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _span_context(context: Context) -> trace.SpanContext:
    return trace.get_current_span(context).get_span_context()


@contextlib.contextmanager
def service_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    links: list[Link] | None = None,
    attributes: Attributes | None = None,
) -> Iterator[Span]:
    """A current span that, when the block raises, is marked an error with the exception's
    type only. OpenTelemetry's default records the exception as an event with its message and
    makes "Type: message" the status's description; both reach Application Insights."""
    with tracer().start_as_current_span(
        name,
        kind=kind,
        context=context,
        links=links,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as failure:
            span.set_status(Status(StatusCode.ERROR, type(failure).__name__))
            raise


@contextlib.contextmanager
def _withheld_messages() -> Iterator[None]:
    """Another library's exception leaves as `FunctionFailed`, with its traceback (code
    locations, no values) and without its message or chained causes."""
    try:
        yield
    except SyncError:
        raise  # the service's own: messages hold identifiers only
    except Exception as failure:
        withheld = FunctionFailed(f"{type(failure).__name__} (message withheld)")
        raise withheld.with_traceback(failure.__traceback__) from None


@contextlib.contextmanager
def invocation_span(
    name: str,
    *,
    host_traceparent: str | None,
    host_tracestate: str | None = None,
    attributes: Attributes | None = None,
) -> Iterator[Span]:
    """The span of one function invocation, a child of the host's invocation span (a new trace
    when the host gave none)."""
    parent = remote_context(host_traceparent, host_tracestate) or Context()
    with _withheld_messages(), service_span(name, context=parent, attributes=attributes) as span:
        yield span


@contextlib.contextmanager
def message_span(
    name: str,
    *,
    host_traceparent: str | None,
    host_tracestate: str | None = None,
    sender_traceparent: str | None,
    continue_sender: bool,
    attributes: Attributes | None = None,
) -> Iterator[Span]:
    """The span of one queue message's processing: a child of the sender's span when
    `continue_sender` (one trace per change) and linked to the host's invocation, or the other
    way round. A message without a trace context (sent before traces were carried) is treated
    like a timer's."""
    host = remote_context(host_traceparent, host_tracestate)
    sender = remote_context(sender_traceparent)
    parent: Context | None
    linked: Context | None
    if continue_sender and sender is not None:
        parent, linked, role = sender, host, "host_invocation"
    else:
        parent, linked, role = host, sender, "sent_by"
    links = [Link(_span_context(linked), {LINK_ROLE: role})] if linked is not None else []
    with (
        _withheld_messages(),
        service_span(name, context=parent or Context(), links=links, attributes=attributes) as span,
    ):
        yield span
