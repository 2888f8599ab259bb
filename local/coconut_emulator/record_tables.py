"""Show a staff member's appointments and absences in Coconut's record as tables.

Only ids, times, status and the service: never an attendee's name, contact or notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table


def appointments_table(user_id: str, items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title=f"Appointments of {user_id} in Coconut's record ({len(items)})")
    # Ids, revisions and statuses stay whole; times, service and staff give way on a narrow screen.
    table.add_column("id", no_wrap=True)
    table.add_column("rev", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("start", "end"):
        table.add_column(column, overflow="fold")
    table.add_column("service", overflow="fold")
    table.add_column("staff", overflow="fold")
    for item in items:
        attributes = item.get("attributes", {})
        service = attributes.get("service") or {}
        staff = ", ".join(str(member.get("id")) for member in attributes.get("staff") or [])
        table.add_row(
            str(item.get("id")),
            str(attributes.get("revision")),
            str(attributes.get("status")),
            str(attributes.get("start")),
            str(attributes.get("end")),
            str(service.get("name", "")),
            staff,
        )
    return table


def absences_table(user_id: str, items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title=f"Absences of {user_id} in Coconut's record ({len(items)})")
    table.add_column("id", no_wrap=True)
    table.add_column("rev", justify="right", no_wrap=True)
    for column in ("start", "end"):
        table.add_column(column, overflow="fold")
    table.add_column("all day", no_wrap=True)
    table.add_column("title", overflow="fold")
    for item in items:
        attributes = item.get("attributes", {})
        table.add_row(
            str(item.get("id")),
            str(attributes.get("revision")),
            str(attributes.get("start")),
            str(attributes.get("end")),
            "yes" if attributes.get("all_day") else "no",
            str(attributes.get("title")),
        )
    return table
