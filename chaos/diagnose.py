"""What the run can say about a difference it found: the Graph requests about the item, what
people did to its events, what the service's tables hold for it, and where its events are now.

The Graph journal records every Outlook request the emulator answers (time, method, path, the
answer, and for writes the Coconut id and transaction id the body carried): ids and statuses
only, never an event's content.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from azure.data.tables import TableServiceClient

from chaos.outlook import OutlookActor, coconut_key
from local.graph_emulator.graph_api import GraphRequest, GraphResponse
from local.graph_emulator.server import GraphEmulator
from sync.export.planning import transaction_id
from sync.graph.calendar import COCONUT_ID_PROPERTY
from sync.names import ITEMS_TABLE, STAFF_ITEMS_TABLE, STAFF_TABLE
from sync.storage.keys import table_key

# Columns of the service's rows worth showing (never an item's content).
_ITEM_COLUMNS = ("Kind", "Revision", "Deleted")
_LINK_COLUMNS = (
    "Pending",
    "PendingAt",
    "EventId",
    "Generation",
    "PendingCreate",
    "ChangeKey",
    "Failures",
    "LastError",
    "RetryAt",
)

_STAFF_COLUMNS = ("Status", "Reason", "ThrottledUntil", "Failures", "LastImportAt", "ListedAt")


@dataclass(frozen=True)
class JournalEntry:
    at: float  # seconds since the run started
    method: str
    path: str
    status: str  # the HTTP status, or "dropped"
    item_key: str = ""  # the Coconut id a create carried
    transaction: str = ""
    event_id: str = ""  # the event the request named or the create answered with

    def line(self) -> str:
        extras = [
            f"{name}={value}"
            for name, value in (
                ("item", self.item_key),
                ("txn", self.transaction[:8]),
                ("event", self.event_id[-12:]),
            )
            if value
        ]
        return f"{self.at:8.2f}s {self.method} {self.path} -> {self.status} {' '.join(extras)}"


@dataclass
class GraphJournal:
    """Every Outlook request the emulator answers, in order."""

    started: float = field(default_factory=time.monotonic)
    entries: list[JournalEntry] = field(default_factory=list)

    def install(self, graph: GraphEmulator) -> None:
        handle: Callable[[GraphRequest], Awaitable[GraphResponse]] = graph.app.graph.handle

        async def journaled(request: GraphRequest) -> GraphResponse:
            response = await handle(request)
            if request.path.startswith("/users/"):
                self.entries.append(self._entry(request, response))
            return response

        graph.app.graph.handle = journaled  # type: ignore[method-assign]

    def _entry(self, request: GraphRequest, response: GraphResponse) -> JournalEntry:
        status = "dropped" if response.drop_connection else str(response.status)
        item_key = transaction = event_id = ""
        if request.method == "POST" and request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = {}
            if isinstance(body, dict):
                item_key = coconut_key(body)
                transaction = str(body.get("transactionId") or "")
        if isinstance(response.body, dict) and isinstance(response.body.get("id"), str):
            event_id = response.body["id"]
        path = request.path
        query = "&".join(f"{k}={v}" for k, v in request.query_items if k == "$filter")
        if COCONUT_ID_PROPERTY.lower() in query.lower():
            # A search by Coconut id: the id searched for.
            item_key = query.rsplit("eq '", 1)[-1].rstrip("')")
        return JournalEntry(
            round(time.monotonic() - self.started, 2),
            request.method,
            path,
            status,
            item_key,
            transaction,
            event_id,
        )

    def about(self, event_ids: set[str], item_key: str, transactions: set[str]) -> list[str]:
        lines = []
        for entry in self.entries:
            if (
                entry.item_key == item_key
                or entry.transaction in transactions
                or any(event_id and event_id in entry.path for event_id in event_ids)
                or entry.event_id in event_ids
            ):
                lines.append(entry.line())
        return lines


def explain(
    difference: str,
    *,
    graph: GraphEmulator,
    actor: OutlookActor,
    journal: GraphJournal,
    connection_string: str,
    mailboxes: dict[str, str],
) -> list[str]:
    """Everything known about one difference ("<staff id> <item key>[...]")."""
    staff_id, key = difference.split()[:2]
    key = key.rstrip(":")
    lines = [f"about {staff_id} {key}:"]
    tables = TableServiceClient.from_connection_string(connection_string)
    link: dict[str, Any] = {}
    try:
        item = tables.get_table_client(ITEMS_TABLE).query_entities(
            "PartitionKey eq @pk", parameters={"pk": table_key(key)}
        )
        for entity in item:
            lines.append(f"  items row {entity['RowKey']}: {_columns(entity, _ITEM_COLUMNS)}")
        link = dict(
            tables.get_table_client(STAFF_ITEMS_TABLE).get_entity(
                table_key(staff_id), table_key(key)
            )
        )
        lines.append(f"  staffitems row: {_columns(link, _LINK_COLUMNS)}")
    except Exception as error:
        lines.append(f"  staffitems row: none ({type(error).__name__})")
    try:
        staff = dict(tables.get_table_client(STAFF_TABLE).get_entity(table_key(staff_id), "staff"))
        lines.append(f"  staff record: {_columns(staff, _STAFF_COLUMNS)}")
    except Exception as error:
        lines.append(f"  staff record: none ({type(error).__name__})")
    mailbox = mailboxes.get(staff_id)
    event_ids: set[str] = {str(link.get("EventId") or "")} - {""}
    if mailbox is not None:
        for event in graph.events(mailbox, "all"):
            if coconut_key(event) == key:
                event_ids.add(str(event["id"]))
                lines.append(f"  event {event['id'][-12:]} in {event.get('folder')}")
    for tamper in actor.tampers:
        if tamper.staff_id == staff_id and tamper.item_key == key:
            event_ids.add(tamper.event_id)
            lines.append(
                f"  {tamper.at:8.2f}s a person: {tamper.kind} event {tamper.event_id[-12:]}"
            )
    generation = int(link.get("Generation") or 0)
    transactions = {transaction_id(staff_id, key, g) for g in range(generation + 3)}
    lines += ["  " + line for line in journal.about(event_ids - {""}, key, transactions)]
    return lines


def _columns(entity: dict[str, Any], names: tuple[str, ...]) -> str:
    return ", ".join(f"{name}={entity.get(name)!s}" for name in names if name in entity)
