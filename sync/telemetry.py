"""Telemetry: one structured log record per operation, the service's metrics, and where they go.

The service owns its telemetry; the platform's Python worker does not configure any
(`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY` stays unset, docs/deployment.md says why).
`configure_telemetry` builds one pipeline per process (`sync.telemetry_pipeline`):

- In Azure (`APPLICATIONINSIGHTS_CONNECTION_STRING` set) records, spans and metrics go to
  Application Insights through the Azure Monitor exporters: a record's `extra={...}` fields become
  the trace's `customDimensions`, spans become requests and dependencies (`sync.tracing`,
  `sync.http_tracing`), metrics land in `customMetrics`.
- Locally the same records go to the console, each followed by its dimensions and trace id
  (`| operation=staff_sync staff_id=U-42 ... trace=4bf9…`); with `SYNC_TRACE_FILE` set, finished
  spans are also written to that file (`sync.trace_file`). Metrics go nowhere.

Only the `sync` loggers are exported, each record once: they do not propagate to the root
logger, whose handler (the worker's) would hand them to the host to export again; and the SDKs'
own loggers (azure-core's HTTP logging, httpx, kiota, MSAL) are held at WARNING, so the request
URLs they log at INFO never reach any handler.

Dimensions are identifiers, codes and numbers only: staff ids, Coconut ids, outcomes, status
codes. Never names, e-mail addresses, phone numbers, notes or answers (the alerts, the workbook
and docs/operations.md query these names; keep them in step).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final, Literal

from azure.core.settings import settings as azure_settings
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from sync.telemetry_pipeline import Pipeline, install, installed, meter, service_resource
from sync.trace_file import TRACE_FILE_SETTING, SpanFile

# The standard dimensions of an operation record.
OPERATION: Final = "operation"
STAFF_ID: Final = "staff_id"
COCONUT_ID: Final = "coconut_id"
OUTCOME: Final = "outcome"
GRAPH_STATUS: Final = "graph_status"
ATTEMPT: Final = "attempt"
LATENCY_MS: Final = "latency_ms"

# Metric names (infra/app/alerts.bicep and workbook.json query them).
WEBHOOK_TO_EXCHANGE_MS: Final = "webhook_to_exchange_ms"
EXCHANGE_TO_COCONUT_MS: Final = "exchange_to_coconut_ms"
GRAPH_THROTTLED: Final = "graph_throttled"
QUEUE_AGE_MS: Final = "queue_age_ms"
STAFF_BY_STATUS: Final = "staff_by_status"
POISON_QUEUE_LENGTH: Final = "poison_queue_length"
LOST_WEBHOOKS_REPAIRED: Final = "lost_webhooks_repaired"

SERVICE_LOGGER: Final = "sync"
CONNECTION_STRING_SETTING: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"
SITE_NAME_SETTING: Final = "WEBSITE_SITE_NAME"
# Settings that make the platform's Python worker configure Azure Monitor (or, in some worker
# versions, OpenTelemetry) itself: a second pipeline next to the service's.
PLATFORM_TELEMETRY_SETTINGS: Final = (
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "PYTHON_ENABLE_OPENTELEMETRY",
)
# Loggers of the SDKs the service uses; at INFO some log request URLs (a Graph `$filter` with a
# staff member's e-mail address) and headers.
SDK_LOGGERS: Final = (
    "azure",
    "httpx",
    "httpcore",
    "msal",
    "kiota_abstractions",
    "kiota_http",
    "kiota_authentication_azure",
    "msgraph",
    "msgraph_core",
    "urllib3",
)

log = logging.getLogger("sync.telemetry")

# The staff member the current task works for: records made deep inside (a throttled Graph call)
# carry the staff id without every layer passing it down. asyncio tasks inherit it.
_current_staff: ContextVar[str | None] = ContextVar("current_staff", default=None)

# Attributes every LogRecord has; anything else on a record is a dimension passed in `extra`.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


def dimensions_of(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra` fields of a log record, in the order they were given."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


class ReadableFormatter(logging.Formatter):
    """`time LEVEL logger: message | key=value ... trace=<id>`: the record, its dimensions and
    the trace it belongs to, on one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        pairs = [f"{key}={value}" for key, value in dimensions_of(record).items()]
        if trace_id := _trace_id():
            pairs.append(f"trace={trace_id}")
        if not pairs:
            return text
        first, newline, rest = text.partition("\n")  # keep a traceback after the dimensions
        return f"{first} | {' '.join(pairs)}{newline}{rest}"


_SEVERITIES: Final = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
)


def _severity(level: int) -> SeverityNumber:
    return next(
        (severity for floor, severity in _SEVERITIES if level >= floor), SeverityNumber.TRACE
    )


class RecordExporter(logging.Handler):
    """Hands each record to the OpenTelemetry log pipeline: its message, level, dimensions (as
    attributes, which become customDimensions) and the current span (the operation id)."""

    def __init__(self, provider: LoggerProvider) -> None:
        super().__init__()
        self._provider = provider

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._provider.get_logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                context=otel_context.get_current(),
                severity_number=_severity(record.levelno),
                severity_text=record.levelname,
                body=record.getMessage(),
                attributes=dimensions_of(record),
                exception=record.exc_info[1] if record.exc_info else None,
            )
        except Exception:
            self.handleError(record)


def telemetry_target(environment: Mapping[str, str]) -> Literal["azure", "console"]:
    """Application Insights when a connection string is set, else the console."""
    return "azure" if environment.get(CONNECTION_STRING_SETTING, "").strip() else "console"


def platform_telemetry_settings(environment: Mapping[str, str]) -> list[str]:
    """The settings present that make the platform's worker export telemetry too."""
    return [
        name
        for name in PLATFORM_TELEMETRY_SETTINGS
        if environment.get(name, "").strip().lower() in ("1", "true")
    ]


def quiet_sdk_loggers() -> None:
    """Hold the SDKs' loggers at WARNING: their INFO lines carry request URLs and headers."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def untrace_azure_sdk() -> None:
    """The Azure SDK opens no spans: the service's own spans and records cover its storage calls
    (and the SDK's would carry request URLs). Said once here because azure-core otherwise looks
    it up in the environment on every call, about 3 % of a storage request's CPU."""
    azure_settings.tracing_enabled.set_value(False)


def use_pipeline(pipeline: Pipeline, records: logging.Handler) -> Callable[[], None]:
    """Emit spans and metrics to `pipeline` and the service's records to `records` only (never
    also to the root logger's handlers); a function that undoes it (for tests)."""
    service = logging.getLogger(SERVICE_LOGGER)
    level, propagate, handlers = service.level, service.propagate, list(service.handlers)
    previous = install(pipeline)
    for handler in handlers:
        service.removeHandler(handler)
    service.addHandler(records)
    service.setLevel(logging.INFO)
    service.propagate = False

    def undo() -> None:
        install(previous)
        service.removeHandler(records)
        for handler in handlers:
            service.addHandler(handler)
        service.setLevel(level)
        service.propagate = propagate

    return undo


def _azure_pipeline(
    environment: Mapping[str, str], file_spans: list[SimpleSpanProcessor]
) -> Pipeline:
    from azure.monitor.opentelemetry.exporter import (
        AzureMonitorLogExporter,
        AzureMonitorMetricExporter,
        AzureMonitorTraceExporter,
    )
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # With local auth off, each exporter takes the managed identity named in
    # APPLICATIONINSIGHTS_AUTHENTICATION_STRING.
    connection = environment[CONNECTION_STRING_SETTING].strip()
    pipeline = Pipeline(
        resource=service_resource(environment.get(SITE_NAME_SETTING)),
        span_processors=file_spans,
        log_processors=[
            BatchLogRecordProcessor(AzureMonitorLogExporter(connection_string=connection))
        ],
        metric_readers=[
            PeriodicExportingMetricReader(AzureMonitorMetricExporter(connection_string=connection))
        ],
    )
    # The trace exporter reads the resource from its provider, the global one unless given.
    spans = AzureMonitorTraceExporter(
        connection_string=connection, tracer_provider=pipeline.tracer_provider
    )
    pipeline.tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    return pipeline


_configured = False


def configure_telemetry(environment: Mapping[str, str] | None = None) -> str:
    """Set up where the service's records, spans and metrics go, once per process; which one."""
    global _configured
    environment = os.environ if environment is None else environment
    target = telemetry_target(environment)
    if _configured:
        return target
    _configured = True
    quiet_sdk_loggers()
    untrace_azure_sdk()
    trace_file = environment.get(TRACE_FILE_SETTING, "").strip()
    file_spans = [SimpleSpanProcessor(SpanFile(Path(trace_file)))] if trace_file else []
    records: logging.Handler
    if target == "azure":
        pipeline = _azure_pipeline(environment, file_spans)
        records = RecordExporter(pipeline.logger_provider)
    else:
        pipeline = Pipeline(span_processors=file_spans)
        records = logging.StreamHandler(sys.stderr)
        records.setFormatter(ReadableFormatter())
    use_pipeline(pipeline, records)
    for setting in platform_telemetry_settings(environment):
        log.warning(
            "%s is set: the Python worker exports telemetry of its own next to the service's; "
            "remove the setting (docs/deployment.md)",
            setting,
            extra={OPERATION: "telemetry", OUTCOME: "conflict", "setting": setting},
        )
    return target


def current_staff() -> str | None:
    """The staff member the current task works for, if any."""
    return _current_staff.get()


@contextlib.contextmanager
def staff_context(staff_id: str) -> Iterator[None]:
    """Records made inside carry `staff_id` unless they name another."""
    token = _current_staff.set(staff_id)
    try:
        yield
    finally:
        _current_staff.reset(token)


def log_operation(
    logger: logging.Logger,
    message: str,
    *,
    operation: str,
    outcome: str,
    level: int = logging.INFO,
    **dimensions: str | int | float | bool | None,
) -> None:
    """One record for one operation with the standard dimensions (absent ones left out:
    OpenTelemetry attributes cannot be null)."""
    fields: dict[str, Any] = {OPERATION: operation, OUTCOME: outcome}
    staff = dimensions.pop(STAFF_ID, None) or _current_staff.get()
    if staff:
        fields[STAFF_ID] = staff
    # A name LogRecord already uses would make logging raise: keep it, renamed.
    fields.update(
        {
            (f"{k}_" if k in _RECORD_ATTRIBUTES else k): v
            for k, v in dimensions.items()
            if v is not None
        }
    )
    logger.log(level, message, extra=fields)


class GaugeReadings:
    """The values a gauge was last given, handed to the next metric collection, then forgotten.

    The gauges are observable: read when metrics are collected, not set. Each reading is
    exported once, so a value the service stopped reporting (the timer runs on another instance
    now, no staff member has that status any more) is never exported again. A synchronous gauge
    would not do: under the exporter's cumulative temporality the SDK re-exports its last value
    at every collection, for as long as the process lives, and an alert on it never clears.
    """

    def __init__(self) -> None:
        self._lock = (
            threading.Lock()
        )  # reported on the event loop, collected on the reader's thread
        self._pending: list[metrics.Observation] = []

    def replace(self, readings: Iterable[tuple[float, Mapping[str, str]]]) -> None:
        """The current values, one per attribute set; earlier ones not yet collected are dropped."""
        with self._lock:
            self._pending = [metrics.Observation(value, dict(attrs)) for value, attrs in readings]

    def observe(self, options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        with self._lock:
            taken, self._pending = self._pending, []
        return taken


class Metrics:
    """The service's instruments on one meter (the installed pipeline's, or a test's)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.webhook_to_exchange = meter.create_histogram(
            WEBHOOK_TO_EXCHANGE_MS, unit="ms", description="Coconut webhook received to Exchange"
        )
        self.exchange_to_coconut = meter.create_histogram(
            EXCHANGE_TO_COCONUT_MS,
            unit="ms",
            description="Graph change notification received to Coconut busy time written",
        )
        self.graph_throttled = meter.create_counter(
            GRAPH_THROTTLED, description="Graph answers 429 or 503 (each one, retried or not)"
        )
        self.queue_age = meter.create_histogram(
            QUEUE_AGE_MS, unit="ms", description="time undelayed sync work waited in the queue"
        )
        self.staff_by_status = GaugeReadings()
        meter.create_observable_gauge(
            STAFF_BY_STATUS,
            callbacks=[self.staff_by_status.observe],
            description="staff members per status",
        )
        self.poison_queue_length = GaugeReadings()
        meter.create_observable_gauge(
            POISON_QUEUE_LENGTH,
            callbacks=[self.poison_queue_length.observe],
            description="messages in staff-sync-poison",
        )
        self.lost_webhooks_repaired = meter.create_counter(
            LOST_WEBHOOKS_REPAIRED,
            description="items the scheduled repair found Coconut and the service disagree on",
        )


_metrics: tuple[Pipeline | None, Metrics] | None = None


def service_metrics() -> Metrics:
    """The instruments on the installed pipeline's meter (no-ops before one is installed)."""
    global _metrics
    current = installed()
    if _metrics is None or _metrics[0] is not current:
        _metrics = (current, Metrics(meter()))
    return _metrics[1]


def record_latency(name: str, milliseconds: float, *, trigger: str) -> None:
    """A webhook-to-Exchange or Exchange-to-Coconut latency."""
    instruments = service_metrics()
    histogram = (
        instruments.webhook_to_exchange
        if name == WEBHOOK_TO_EXCHANGE_MS
        else instruments.exchange_to_coconut
    )
    histogram.record(max(0.0, milliseconds), {"trigger": trigger})


def record_queue_age(milliseconds: float, *, trigger: str) -> None:
    service_metrics().queue_age.record(max(0.0, milliseconds), {"trigger": trigger})


def count_lost_webhooks_repaired(created: int, updated: int, removed: int) -> None:
    """What a scheduled repair mended, by kind: each is a webhook that never arrived."""
    counter = service_metrics().lost_webhooks_repaired
    for kind, count in (("created", created), ("updated", updated), ("removed", removed)):
        if count:
            counter.add(count, {"kind": kind})
    if created or updated or removed:
        log_operation(
            log,
            "lost webhooks repaired",
            operation="coconut_reconcile",
            outcome="repaired",
            level=logging.WARNING,
            repaired_created=created,
            repaired_updated=updated,
            repaired_removed=removed,
        )


def count_throttled_answer(status: int) -> None:
    """A Graph 429 or 503, as the transport saw it (`sync.http_tracing`)."""
    service_metrics().graph_throttled.add(1, {"status": str(status)})


def count_graph_throttled(*, attempt: int, retry_after: float | None) -> None:
    """A Graph 429, logged with the staff member it was for (throttling by mailbox). The
    `graph_throttled` counter is kept by the transport, which sees every answer, 503s too."""
    log_operation(
        log,
        "graph throttled",
        operation="graph_call",
        outcome="throttled",
        level=logging.WARNING,
        graph_status=429,
        attempt=attempt,
        retry_after_s=retry_after,
    )


def report_staff_by_status(counts: Mapping[str, int]) -> None:
    """Every status's count now; a status left out is not exported at all."""
    service_metrics().staff_by_status.replace(
        (count, {"status": status}) for status, count in counts.items()
    )


def report_poison_queue_length(length: int) -> None:
    service_metrics().poison_queue_length.replace([(length, {})])
