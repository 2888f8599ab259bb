"""One record per operation with its dimensions, readable locally and exported once; the
metrics the alerts read, gauges that never outlive their value."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.policies import DistributedTracingPolicy, HttpLoggingPolicy
from azure.core.rest import HttpRequest
from azure.core.settings import settings as azure_settings
from azure.monitor.opentelemetry.exporter._generated.exporter.models import MessageData
from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sync.telemetry import (
    PLATFORM_TELEMETRY_SETTINGS,
    SDK_LOGGERS,
    Metrics,
    ReadableFormatter,
    RecordExporter,
    count_throttled_answer,
    dimensions_of,
    log_operation,
    platform_telemetry_settings,
    quiet_sdk_loggers,
    report_poison_queue_length,
    report_staff_by_status,
    staff_context,
    telemetry_target,
    untrace_azure_sdk,
)
from sync.trace_file import read_spans
from sync.tracing import invocation_span
from tests.infra.test_alerts_and_workbook import METRICS
from tests.sync.conftest import METRIC_TEMPORALITIES, Exported

log = logging.getLogger("sync.test")


def test_a_record_carries_the_standard_dimensions_without_empty_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "sync.test")
    log_operation(
        log,
        "staff sync synced",
        operation="staff_sync",
        outcome="synced",
        staff_id="U-42",
        coconut_id="appointment:7",
        graph_status=None,
        attempt=0,
        latency_ms=12.5,
    )
    [record] = caplog.records
    assert dimensions_of(record) == {
        "operation": "staff_sync",
        "outcome": "synced",
        "staff_id": "U-42",
        "coconut_id": "appointment:7",
        "attempt": 0,
        "latency_ms": 12.5,
    }


def test_records_made_inside_a_staff_context_name_the_staff_member(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "sync.test")
    with staff_context("U-7"):
        log_operation(log, "graph throttled", operation="graph_call", outcome="throttled")
    log_operation(log, "outside", operation="timer", outcome="ok")
    inside, outside = caplog.records
    assert dimensions_of(inside)["staff_id"] == "U-7"
    assert "staff_id" not in dimensions_of(outside)


def test_a_dimension_named_like_a_record_attribute_is_kept_renamed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "sync.test")
    log_operation(log, "export", operation="export", outcome="ok", created=2, name="x")
    [record] = caplog.records
    assert dimensions_of(record)["created_"] == 2
    assert dimensions_of(record)["name_"] == "x"


def test_the_console_shows_each_record_with_its_dimensions_on_one_line() -> None:
    record = logging.LogRecord(
        "sync.staff", logging.INFO, __file__, 1, "staff sync %s", ("ok",), None
    )
    record.__dict__.update({"operation": "staff_sync", "staff_id": "U-42", "latency_ms": 3.0})
    line = ReadableFormatter().format(record)
    assert line.endswith(
        "sync.staff: staff sync ok | operation=staff_sync staff_id=U-42 latency_ms=3.0"
    )
    assert "\n" not in line


def test_application_insights_only_with_a_connection_string() -> None:
    assert telemetry_target({}) == "console"
    assert telemetry_target({"APPLICATIONINSIGHTS_CONNECTION_STRING": " "}) == "console"
    assert telemetry_target({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}) == (
        "azure"
    )


def test_metric_names_are_the_ones_the_alerts_and_workbook_query() -> None:
    reader = InMemoryMetricReader()
    instruments = Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    instruments.webhook_to_exchange.record(1200.0, {"trigger": "webhook"})
    instruments.exchange_to_coconut.record(800.0, {"trigger": "notification"})
    instruments.graph_throttled.add(1, {"status": "429"})
    instruments.queue_age.record(15.0, {"trigger": "webhook"})
    instruments.staff_by_status.replace([(2, {"status": "Error"})])
    instruments.poison_queue_length.replace([(0, {})])
    instruments.lost_webhooks_repaired.add(1, {"kind": "updated"})
    assert set(_points(reader)) == METRICS


# ----- Exported once, and only the service's own records ---------------------------------------

# A Graph lookup as the SDKs would log it at INFO: the query names a staff member's address.
LOOKUP_URL = (
    "https://graph.microsoft.com/v1.0/users?$filter=mail%20eq%20%27jane.doe%40bank.example%27"
)


class Captured(logging.Handler):
    """Stands in for the handler the platform puts on the root logger (the worker's channel to
    the host, or its own Azure Monitor handler): whatever reaches it is exported a second time."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_handler() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *SDK_LOGGERS)}
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # as the Python worker sets it
    yield handler
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _sdk_http_logs() -> None:
    """What azure-core's HTTP logging and httpx write for one request each, at INFO."""
    request = PipelineRequest(HttpRequest("GET", LOOKUP_URL), PipelineContext(None))
    HttpLoggingPolicy().on_request(request)
    transport = httpx.MockTransport(lambda _: httpx.Response(200))
    with httpx.Client(transport=transport) as client:
        client.get(LOOKUP_URL)


def test_a_service_record_is_exported_once_and_sdk_http_logs_never(
    exported: Exported, root_handler: Captured
) -> None:
    quiet_sdk_loggers()
    log_operation(
        logging.getLogger("sync.staff"),
        "staff sync synced",
        operation="staff_sync",
        outcome="synced",
        staff_id="U-42",
        latency_ms=12.5,
    )
    _sdk_http_logs()

    [exported_record] = exported.records.get_finished_logs()
    record = exported_record.log_record
    assert record.body == "staff sync synced"
    assert dict(record.attributes or {}) == {
        "operation": "staff_sync",
        "outcome": "synced",
        "staff_id": "U-42",
        "latency_ms": 12.5,
    }
    # Nothing reached the root logger: not the service's record (it would be exported again),
    # not the SDKs' request lines (they carry the address in the URL).
    assert root_handler.records == []


def test_the_azure_sdk_opens_no_span_even_when_its_environment_asks_for_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_TRACING_ENABLED", "true")
    monkeypatch.setenv("AZURE_SDK_TRACING_IMPLEMENTATION", "opentelemetry")
    monkeypatch.setattr(
        azure_settings.tracing_enabled, "_user_value", azure_settings.tracing_enabled._user_value
    )
    request = PipelineRequest(
        HttpRequest("GET", "https://account.table.core.windows.net/staff"), PipelineContext(None)
    )

    untrace_azure_sdk()
    DistributedTracingPolicy().on_request(request)

    assert DistributedTracingPolicy.TRACING_CONTEXT not in request.context
    assert "traceparent" not in request.http_request.headers


def test_with_the_platform_configured_too_a_record_is_still_exported_once(
    exported: Exported, root_handler: Captured
) -> None:
    # The failure this guards against: PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true makes the
    # worker configure Azure Monitor on the root logger, next to the service's own pipeline.
    platform = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(platform))
    platform_handler = RecordExporter(provider)
    logging.getLogger().addHandler(platform_handler)
    try:
        quiet_sdk_loggers()
        logging.getLogger("sync.webhooks").info(
            "webhook accepted", extra={"operation": "webhook", "coconut_id": "appointment:7"}
        )
        _sdk_http_logs()
    finally:
        logging.getLogger().removeHandler(platform_handler)
    assert len(exported.records.get_finished_logs()) == 1
    assert platform.get_finished_logs() == ()


def test_a_record_made_in_a_span_carries_its_trace(exported: Exported) -> None:
    with invocation_span("coconut_webhook", host_traceparent=None) as span:
        logging.getLogger("sync.webhooks").info("webhook accepted")
    [exported_record] = exported.records.get_finished_logs()
    assert exported_record.log_record.trace_id == span.get_span_context().trace_id


def test_what_application_insights_receives_for_a_record(exported: Exported) -> None:
    # The exporter's own conversion: the message, the dimensions as customDimensions, the
    # trace as the operation id.
    with invocation_span("coconut_webhook", host_traceparent=None) as span:
        logging.getLogger("sync.webhooks").warning(
            "webhook accepted", extra={"operation": "webhook", "coconut_id": "appointment:7"}
        )
    [exported_record] = exported.records.get_finished_logs()
    envelope = _convert_log_to_envelope(exported_record)
    assert envelope.data is not None
    trace = envelope.data.base_data
    assert isinstance(trace, MessageData)
    # The exporter sends the severity as its number, though the model types it as a name.
    severity: object = trace.severity_level
    assert (trace.message, severity) == ("webhook accepted", 2)  # Warning
    assert trace.properties == {
        "operation": "webhook",
        "coconut_id": "appointment:7",
        "logger_name": "sync.webhooks",
    }
    assert envelope.tags is not None
    assert envelope.tags["ai.operation.id"] == f"{span.get_span_context().trace_id:032x}"


def test_the_console_line_names_the_trace_a_record_belongs_to(exported: Exported) -> None:
    record = logging.LogRecord("sync.staff", logging.INFO, __file__, 1, "staff sync", (), None)
    record.__dict__.update({"operation": "staff_sync"})
    with invocation_span("staff_sync", host_traceparent=None) as span:
        line = ReadableFormatter().format(record)
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert line.endswith(f"| operation=staff_sync trace={trace_id}")


def test_the_platform_settings_that_would_export_twice_are_recognised() -> None:
    assert platform_telemetry_settings({}) == []
    assert (
        platform_telemetry_settings({"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "false"}) == []
    )
    assert platform_telemetry_settings(
        {"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "True", "PYTHON_ENABLE_OPENTELEMETRY": "1"}
    ) == ["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "PYTHON_ENABLE_OPENTELEMETRY"]


# ----- Gauges: the current value only ----------------------------------------------------------


def _points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], float]]:
    """Metric name -> {attributes: value} of one collection (sums for counters)."""
    data = reader.get_metrics_data()
    found: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = tuple(sorted((point.attributes or {}).items()))
                    value = getattr(point, "value", None)
                    found.setdefault(metric.name, {})[key] = (
                        value if value is not None else getattr(point, "sum", 0)
                    )
    return found


def _gauges(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], float]]:
    points = _points(reader)
    return {
        name: points[name] for name in ("staff_by_status", "poison_queue_length") if name in points
    }


def test_gauges_are_exported_with_the_value_last_reported(exported: Exported) -> None:
    report_staff_by_status({"Syncing": 40, "Error": 2})
    report_poison_queue_length(3)
    assert _gauges(exported.metrics) == {
        "staff_by_status": {(("status", "Error"),): 2, (("status", "Syncing"),): 40},
        "poison_queue_length": {(): 3},
    }


def test_a_gauge_nobody_reports_any_more_is_not_exported_again(exported: Exported) -> None:
    report_staff_by_status({"Error": 2})
    report_poison_queue_length(1)
    _points(exported.metrics)
    # The timer stopped on this instance: the next collections export nothing, so an alert on
    # "Error > 0" or "poison > 0" clears instead of being held up by a stale value.
    assert _gauges(exported.metrics) == {}
    assert _gauges(exported.metrics) == {}


def test_a_status_nobody_has_any_more_disappears_from_the_gauge(exported: Exported) -> None:
    report_staff_by_status({"Syncing": 40, "Error": 2})
    report_staff_by_status({"Syncing": 42})  # the Error one was fixed before the collection
    assert _gauges(exported.metrics) == {"staff_by_status": {(("status", "Syncing"),): 42}}
    report_staff_by_status({"Syncing": 42, "Warning": 1})
    assert _gauges(exported.metrics) == {
        "staff_by_status": {(("status", "Syncing"),): 42, (("status", "Warning"),): 1}
    }


def test_why_the_gauges_are_observable_a_synchronous_one_repeats_its_last_value() -> None:
    reader = InMemoryMetricReader(preferred_temporality=METRIC_TEMPORALITIES)
    gauge = MeterProvider(metric_readers=[reader]).get_meter("test").create_gauge("stale")
    gauge.set(2, {"status": "Error"})
    assert _points(reader) == {"stale": {(("status", "Error"),): 2}}
    assert _points(reader) == {"stale": {(("status", "Error"),): 2}}  # never set again


def test_graph_throttling_is_counted_by_status(exported: Exported) -> None:
    count_throttled_answer(429)
    count_throttled_answer(503)
    count_throttled_answer(429)
    assert _points(exported.metrics)["graph_throttled"] == {
        (("status", "429"),): 2,
        (("status", "503"),): 1,
    }


# ----- configure_telemetry in a process of its own ---------------------------------------------

_LOCAL_RUN = """
import logging
from sync.telemetry import configure_telemetry
from sync.trace_file import read_spans
from sync.tracing import invocation_span
print(configure_telemetry(), configure_telemetry())
with invocation_span("coconut_webhook", host_traceparent=None):
    logging.getLogger("sync.webhooks").info("webhook accepted", extra={"coconut_id": "a:1"})
"""


def test_locally_records_go_to_the_console_and_spans_to_the_trace_file(tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("APPLICATIONINSIGHTS_CONNECTION_STRING", *PLATFORM_TELEMETRY_SETTINGS)
    }
    done = subprocess.run(
        [sys.executable, "-c", _LOCAL_RUN],
        env={**environment, "SYNC_TRACE_FILE": str(spans), "PYTHON_ENABLE_OPENTELEMETRY": "true"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.split() == ["console", "console"]  # configured once
    [span] = read_spans(spans)
    [record] = [line for line in done.stderr.splitlines() if "webhook accepted" in line]
    assert record.endswith(f"| coconut_id=a:1 trace={span['trace_id']}")
    # A platform setting that would export a second time is named at start-up.
    assert "PYTHON_ENABLE_OPENTELEMETRY is set" in done.stderr
