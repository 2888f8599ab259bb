"""Show a user's external events (Exchange busy time inside Coconut) as a table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table


def busy_table(user_id: str, events: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title=f"External events of {user_id} ({len(events)})")
    table.add_column("external id", overflow="fold")
    for column in ("start", "end"):
        table.add_column(column, no_wrap=True, min_width=20)
    for column in ("all day", "show as", "title"):
        table.add_column(column)
    rows = sorted(events.items(), key=lambda item: (_attribute(item[1], "start"), item[0]))
    for external_id, data in rows:
        table.add_row(
            external_id,
            _attribute(data, "start"),
            _attribute(data, "end"),
            _attribute(data, "all_day"),
            _attribute(data, "show_as"),
            _attribute(data, "title"),
        )
    return table


def _attribute(data: Mapping[str, Any], name: str) -> str:
    attributes = data.get("attributes")
    value = attributes.get(name) if isinstance(attributes, Mapping) else None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)
