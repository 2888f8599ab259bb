"""One record per operation with its dimensions, readable locally; the metrics the alerts read."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sync.telemetry import (
    Metrics,
    ReadableFormatter,
    dimensions_of,
    log_operation,
    staff_context,
    telemetry_target,
)
from tests.infra.test_alerts_and_workbook import METRICS

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
    instruments.graph_throttled.add(1)
    instruments.queue_age.record(15.0, {"trigger": "webhook"})
    instruments.staff_by_status.set(2, {"status": "Error"})
    instruments.poison_queue_length.set(0)
    data = reader.get_metrics_data()
    assert data is not None
    names = {
        metric.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert names == METRICS
