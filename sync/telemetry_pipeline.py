"""The service's own OpenTelemetry providers: where its spans, records and metrics go.

The service builds its tracer, logger and meter providers itself and never installs them as the
global ones. Only what the service emits is exported: the spans the Graph SDK (kiota) and the
Azure SDK open through the global API stay no-ops, so their request URLs go nowhere, and a second
configuration (the platform's Python worker, if enabled) cannot pick up the service's telemetry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

# Instrumentation scope of everything the service emits.
SCOPE: Final = "sync"
DEFAULT_SERVICE_NAME: Final = "coconut-m365-sync"


def service_resource(site_name: str | None) -> Resource:
    """`service.name` becomes the cloud role name: the site's name, as the host reports it."""
    return Resource.create({SERVICE_NAME: site_name or DEFAULT_SERVICE_NAME})


class Pipeline:
    """One tracer, logger and meter provider, each with the processors it is given.

    A tracer provider exists even without a span processor: its spans still have ids, which the
    queue messages carry and the console shows.
    """

    def __init__(
        self,
        *,
        resource: Resource | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        log_processors: Sequence[LogRecordProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        resource = resource or service_resource(None)
        self.tracer_provider = TracerProvider(resource=resource)
        for span_processor in span_processors:
            self.tracer_provider.add_span_processor(span_processor)
        self.logger_provider = LoggerProvider(resource=resource)
        for log_processor in log_processors:
            self.logger_provider.add_log_record_processor(log_processor)
        self.exports_records = bool(log_processors)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=list(metric_readers))
        self.tracer = self.tracer_provider.get_tracer(SCOPE)
        self.meter = self.meter_provider.get_meter(SCOPE)

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
        self.meter_provider.force_flush()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


_installed: Pipeline | None = None


def install(pipeline: Pipeline | None) -> Pipeline | None:
    """Make `pipeline` the one the service emits to; the one it replaces."""
    global _installed
    previous, _installed = _installed, pipeline
    return previous


def installed() -> Pipeline | None:
    return _installed


def tracer() -> trace.Tracer:
    """The service's tracer; a no-op one until a pipeline is installed (unit tests)."""
    return _installed.tracer if _installed is not None else trace.NoOpTracer()


def meter() -> metrics.Meter:
    return _installed.meter if _installed is not None else metrics.NoOpMeter(SCOPE)
