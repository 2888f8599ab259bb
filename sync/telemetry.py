"""Telemetry: one structured log record per operation, and the service's custom metrics.

In Azure (`APPLICATIONINSIGHTS_CONNECTION_STRING` set) the records and metrics go to Application
Insights through `azure-monitor-opentelemetry`: a record's `extra={...}` fields become the trace's
`customDimensions`, metrics land in `customMetrics`. Locally the same records go to the console,
each followed by its dimensions (`| operation=staff_sync staff_id=U-42 ...`), and metrics go
nowhere (the OpenTelemetry API is a no-op without a provider).

Dimensions are identifiers, codes and numbers only: staff ids, Coconut ids, outcomes, status
codes. Never names, e-mail addresses, phone numbers, notes or answers (the alerts, the workbook
and docs/operations.md query these names; keep them in step).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from functools import cache
from typing import Any, Final, Literal

from opentelemetry import metrics

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


class ReadableFormatter(logging.Formatter):
    """`time LEVEL logger: message | key=value ...`: the record and its dimensions on one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        dimensions = dimensions_of(record)
        if not dimensions:
            return text
        pairs = " ".join(f"{key}={value}" for key, value in dimensions.items())
        first, newline, rest = text.partition("\n")  # keep a traceback after the dimensions
        return f"{first} | {pairs}{newline}{rest}"


_configured = False


def telemetry_target(environment: Mapping[str, str]) -> Literal["azure", "console"]:
    """Application Insights when a connection string is set, else the console."""
    return "azure" if environment.get(CONNECTION_STRING_SETTING, "").strip() else "console"


def configure_telemetry() -> str:
    """Set up where the service's records and metrics go, once per process; which one."""
    global _configured
    target = telemetry_target(os.environ)
    if _configured:
        return target
    _configured = True
    service = logging.getLogger(SERVICE_LOGGER)
    service.setLevel(logging.INFO)
    if target == "azure":
        from azure.monitor.opentelemetry import configure_azure_monitor

        # Only the service's own logger: SDK loggers may write request URLs and bodies.
        # The managed identity comes from APPLICATIONINSIGHTS_AUTHENTICATION_STRING.
        configure_azure_monitor(logger_name=SERVICE_LOGGER)
        return target
    handler = logging.StreamHandler()
    handler.setFormatter(ReadableFormatter())
    service.addHandler(handler)
    service.propagate = False  # printed once, with dimensions, not again by the root handler
    return target


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


class Metrics:
    """The service's instruments on one meter (the global one unless a test gives its own)."""

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
            GRAPH_THROTTLED, description="Graph answers 429 (each one, retried or not)"
        )
        self.queue_age = meter.create_histogram(
            QUEUE_AGE_MS, unit="ms", description="time undelayed sync work waited in the queue"
        )
        self.staff_by_status = meter.create_gauge(
            STAFF_BY_STATUS, description="staff members per status"
        )
        self.poison_queue_length = meter.create_gauge(
            POISON_QUEUE_LENGTH, description="messages in staff-sync-poison"
        )
        self.lost_webhooks_repaired = meter.create_counter(
            LOST_WEBHOOKS_REPAIRED,
            description="items the scheduled repair found Coconut and the service disagree on",
        )


@cache
def service_metrics() -> Metrics:
    # The API's proxy meter follows the provider configure_azure_monitor sets later.
    return Metrics(metrics.get_meter(SERVICE_LOGGER))


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


def count_graph_throttled(*, attempt: int, retry_after: float | None) -> None:
    """A Graph 429: counted, and logged with the staff member it was for (throttling by
    mailbox)."""
    service_metrics().graph_throttled.add(1)
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
    for status, count in counts.items():
        service_metrics().staff_by_status.set(count, {"status": status})


def report_poison_queue_length(length: int) -> None:
    service_metrics().poison_queue_length.set(length)
