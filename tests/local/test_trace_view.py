"""A trace file's spans as the tree the demo prints."""

from __future__ import annotations

import io

from rich.console import Console

from local.trace_view import trace_tree, traces_with


def _span(
    name: str, span_id: str, parent: str | None, start: str, **attributes: object
) -> dict[str, object]:
    return {
        "trace_id": "t1",
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": "CLIENT" if "peer" in attributes else "INTERNAL",
        "start": start,
        "duration_ms": 3.0,
        "attributes": attributes,
    }


def test_spans_hang_under_their_parents_and_orphans_are_roots() -> None:
    spans = [
        _span("GET /v1.0/users", "c", "b", "3", peer="graph", **{"graph.request_id": "r-1"}),
        _span("staff_sync", "b", "a", "2", staff_id="U-42"),
        _span("coconut_webhook", "a", "host", "1"),  # its parent, the host's span, is not here
        {**_span("other", "d", None, "0"), "trace_id": "t2"},
    ]
    assert traces_with(spans, "coconut_webhook") == ["t1"]
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(trace_tree(spans, "t1"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "trace t1"
    assert lines[1].startswith("└── coconut_webhook")
    assert lines[2].strip().startswith("└── staff_sync 3 ms staff_id=U-42")
    assert "GET /v1.0/users (graph) 3 ms request-id=r-1" in lines[3]
    assert "other" not in out.getvalue()
