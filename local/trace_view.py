"""A trace from `SYNC_TRACE_FILE` as a tree: what the end-to-end transaction view shows in
Application Insights, on the console."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rich.tree import Tree

Span = dict[str, Any]

# Attributes worth a glance next to a span's name: a call's answer, a run's staff member.
_SHOWN_FOR_CALLS = {"http.response.status_code": "status", "graph.request_id": "request-id"}
_SHOWN_FOR_RUNS = {"staff_id": "staff_id", "trigger": "trigger"}


def traces_with(spans: Iterable[Span], name: str) -> list[str]:
    """Ids of the traces holding a span called `name`, oldest first."""
    found: dict[str, str] = {}
    for span in spans:
        if span["name"] == name:
            found.setdefault(span["trace_id"], span["start"])
    return sorted(found, key=found.__getitem__)


def _label(span: Span) -> str:
    attributes = span["attributes"]
    shown = _SHOWN_FOR_CALLS if span["kind"] == "CLIENT" else _SHOWN_FOR_RUNS
    details = " ".join(f"{label}={attributes[k]}" for k, label in shown.items() if k in attributes)
    peer = attributes.get("peer")
    name = f"[bold]{span['name']}[/bold]" + (f" [dim]({peer})[/dim]" if peer else "")
    return f"{name} {span['duration_ms']:.0f} ms [dim]{details}[/dim]".rstrip()


def trace_tree(spans: Iterable[Span], trace_id: str) -> Tree:
    """The spans of one trace, each under its parent (a span whose parent is not in the file,
    such as the host's invocation span, is a root)."""
    members = sorted((s for s in spans if s["trace_id"] == trace_id), key=lambda s: s["start"])
    ids = {s["span_id"] for s in members}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in members:
        parent = span["parent_span_id"]
        children[parent if parent in ids else None].append(span)
    tree = Tree(f"[bold]trace {trace_id}[/bold]")

    def add(node: Tree, span: Span) -> None:
        branch = node.add(_label(span))
        for child in children[span["span_id"]]:
            add(branch, child)

    for root in children[None]:
        add(tree, root)
    return tree
