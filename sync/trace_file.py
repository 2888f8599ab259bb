"""`SYNC_TRACE_FILE`: finished spans as JSON lines, for the local stack.

Locally there is no Application Insights to open a trace in; with this setting the function app
appends every span it finishes to a file, one JSON object a line, which the demo prints as a tree
and the integration tests read back. Harmless in Azure (a file on the instance's disk), and off
unless set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

TRACE_FILE_SETTING: Final = "SYNC_TRACE_FILE"


def _time(nanoseconds: int | None) -> str | None:
    if nanoseconds is None:
        return None
    return datetime.fromtimestamp(nanoseconds / 1e9, UTC).isoformat(timespec="microseconds")


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as plain JSON values (ids in the W3C hex form)."""
    context = span.get_span_context()
    assert context is not None, "a finished span has a context"
    duration = (
        (span.end_time - span.start_time) / 1e6
        if span.end_time is not None and span.start_time is not None
        else None
    )
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "start": _time(span.start_time),
        "duration_ms": duration,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [
            {
                "trace_id": f"{link.context.trace_id:032x}",
                "span_id": f"{link.context.span_id:016x}",
                **dict(link.attributes or {}),
            }
            for link in span.links
        ],
    }


class SpanFile(SpanExporter):
    """Appends each finished span to `path` as one JSON line."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span), default=str) + "\n" for span in spans)
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Every span written so far (a line still being written is skipped)."""
    if not path.exists():
        return []
    spans: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            spans.append(json.loads(line))
        except ValueError:
            continue
    return spans
