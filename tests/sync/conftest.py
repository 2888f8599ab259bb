"""The service's telemetry pipeline with in-memory exporters in place of Application Insights'."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from azure.monitor.opentelemetry.exporter.export.metrics._exporter import (
    APPLICATION_INSIGHTS_METRIC_TEMPORALITIES,
)
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sync.telemetry import RecordExporter, use_pipeline
from sync.telemetry_pipeline import Pipeline

# The Azure Monitor exporter's temporalities, keyed as the metric reader's parameter is typed.
METRIC_TEMPORALITIES: dict[type, AggregationTemporality] = dict(
    APPLICATION_INSIGHTS_METRIC_TEMPORALITIES.items()
)


@dataclass(frozen=True)
class Exported:
    """What reached the exporters: spans, log records, and metrics on demand."""

    spans: InMemorySpanExporter
    records: InMemoryLogRecordExporter
    metrics: InMemoryMetricReader


@pytest.fixture
def exported() -> Iterator[Exported]:
    """The pipeline `configure_telemetry` builds in Azure, exporting to memory instead; metrics
    are collected with the Azure Monitor exporter's own temporalities."""
    spans = InMemorySpanExporter()
    records = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    reader = InMemoryMetricReader(preferred_temporality=METRIC_TEMPORALITIES)
    pipeline = Pipeline(
        span_processors=[SimpleSpanProcessor(spans)],
        log_processors=[SimpleLogRecordProcessor(records)],
        metric_readers=[reader],
    )
    undo = use_pipeline(pipeline, RecordExporter(pipeline.logger_provider))
    yield Exported(spans, records, reader)
    undo()
    pipeline.shutdown()
