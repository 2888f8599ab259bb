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
from datetime import datetime
from pathlib import Path
from typing import Any

from azure.data.tables import TableServiceClient

from chaos.outlook import OutlookActor, coconut_key
from chaos.verify import BusyDifference
from local.graph_emulator.graph_api import GraphRequest, GraphResponse
from local.graph_emulator.server import GraphEmulator
from sync.export.planning import transaction_id
from sync.graph.calendar import COCONUT_ID_PROPERTY
from sync.imports.busy_time import external_id_for
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


def wall_clock() -> str:
    """The local time as the hosts' log lines write it (to find their lines about a moment)."""
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def _tail(token: str) -> str:
    return token[-6:] if token else "-"


@dataclass(frozen=True)
class JournalEntry:
    at: float  # seconds since the run started
    method: str
    path: str
    status: str  # the HTTP status, or "dropped"
    item_key: str = ""  # the Coconut id a create carried
    transaction: str = ""
    event_id: str = ""  # the event the request named or the create answered with
    wall: str = ""  # the local time, as in the hosts' logs
    # A delta page: the token it continued from ("new" for a round's start), the token it
    # handed out, and each item listed: event id -> "removed", or its showAs (and "cancelled").
    delta_from: str = ""
    delta_to: str = ""
    listed: tuple[tuple[str, str], ...] = ()

    def line(self, about: str = "") -> str:
        extras = [
            f"{name}={value}"
            for name, value in (
                ("item", self.item_key),
                ("txn", self.transaction[:8]),
                ("event", self.event_id[-12:]),
            )
            if value
        ]
        if self.delta_from:
            extras.append(f"from={self.delta_from} to={self.delta_to} items={len(self.listed)}")
            state = dict(self.listed).get(about) if about else None
            if state is not None:
                extras.append(f"lists {about[-12:]} as {state}")
        return (
            f"{self.at:8.2f}s {self.wall} {self.method} {self.path} -> {self.status} "
            f"{' '.join(extras)}"
        )


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
        delta_from = delta_to = ""
        listed: tuple[tuple[str, str], ...] = ()
        if "/calendarview/delta" in path.lower():
            delta_from = _tail(
                request.query.get("$deltatoken") or request.query.get("$skiptoken") or ""
            )
            delta_from = "new" if delta_from == "-" else delta_from
            if isinstance(response.body, dict):
                link = str(
                    response.body.get("@odata.deltaLink")
                    or response.body.get("@odata.nextLink")
                    or ""
                )
                delta_to = _tail(link.rsplit("=", 1)[-1] if "=" in link else "")
                listed = tuple(
                    (str(item.get("id")), _delta_state(item))
                    for item in response.body.get("value") or []
                    if isinstance(item, dict)
                )
        return JournalEntry(
            round(time.monotonic() - self.started, 2),
            request.method,
            path,
            status,
            item_key,
            transaction,
            event_id,
            wall_clock(),
            delta_from,
            delta_to,
            listed,
        )

    def event_ids(self, mailbox: str) -> set[str]:
        """Every event id a request about `mailbox` named, a create answered with, or a delta
        page listed."""
        found: set[str] = set()
        for entry in self.entries:
            if not entry.path.startswith(f"/users/{mailbox}/"):
                continue
            found.update(event_id for event_id, _ in entry.listed)
            if entry.event_id:
                found.add(entry.event_id)
        return found

    def about_event(self, mailbox: str, event_id: str) -> list[str]:
        """The requests about one event of `mailbox`: those naming it, and delta pages listing
        it (with what they said)."""
        lines = []
        for entry in self.entries:
            if not entry.path.startswith(f"/users/{mailbox}/"):
                continue
            if event_id in entry.path or entry.event_id == event_id:
                lines.append(entry.line())
            elif any(listed == event_id for listed, _ in entry.listed):
                lines.append(entry.line(about=event_id))
        return lines

    def delta_rounds(self, mailbox: str, since: float, until: float) -> list[str]:
        """The delta pages read for `mailbox` between two moments (run seconds)."""
        return [
            entry.line()
            for entry in self.entries
            if entry.delta_from
            and entry.path.startswith(f"/users/{mailbox}/")
            and since <= entry.at <= until
        ]

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


def _delta_state(item: dict[str, Any]) -> str:
    if "@removed" in item:
        return "removed"
    state = str(item.get("showAs"))
    return f"{state}, cancelled" if item.get("isCancelled") else state


@dataclass(frozen=True)
class CoconutWrite:
    """One PUT or DELETE of an external event Coconut handled (faults refuse before handling,
    so a refused request is not here): times of the block, never content."""

    at: float
    wall: str
    method: str
    staff_id: str
    external_id: str
    result: str  # "created", "replaced", "deleted" or "absent"
    block: str = ""

    def line(self) -> str:
        return (
            f"{self.at:8.2f}s {self.wall} Coconut {self.method} {self.external_id[:19]}… "
            f"-> {self.result} {self.block}"
        )


@dataclass
class CoconutJournal:
    """Every external-event write the Coconut emulator handled, in order."""

    started: float = field(default_factory=time.monotonic)
    entries: list[CoconutWrite] = field(default_factory=list)

    def install(self, state: Any) -> None:
        put: Callable[[str, str, dict[str, Any]], bool] = state.put_external_event
        delete: Callable[[str, str], bool] = state.delete_external_event

        def journaled_put(user_id: str, external_id: str, data: dict[str, Any]) -> bool:
            created = put(user_id, external_id, data)
            attributes = data.get("attributes") or {}
            block = " ".join(str(attributes.get(name, "")) for name in ("start", "end", "show_as"))
            self._note("PUT", user_id, external_id, "created" if created else "replaced", block)
            return created

        def journaled_delete(user_id: str, external_id: str) -> bool:
            existed = delete(user_id, external_id)
            self._note("DELETE", user_id, external_id, "deleted" if existed else "absent")
            return existed

        state.put_external_event = journaled_put
        state.delete_external_event = journaled_delete

    def _note(
        self, method: str, staff_id: str, external_id: str, result: str, block: str = ""
    ) -> None:
        at = round(time.monotonic() - self.started, 2)
        self.entries.append(
            CoconutWrite(at, wall_clock(), method, staff_id, external_id, result, block)
        )

    def about(self, staff_id: str, external_id: str) -> list[CoconutWrite]:
        return [
            entry
            for entry in self.entries
            if entry.staff_id == staff_id and entry.external_id == external_id
        ]


def explain_busy(
    difference: BusyDifference,
    *,
    graph: GraphEmulator,
    actor: OutlookActor,
    journal: GraphJournal,
    coconut: CoconutJournal,
    connection_string: str,
    logs: list[Path],
) -> list[str]:
    """Everything known about one busy block that differs: the event it came from, what people
    did to that event, the Graph requests about it (delta rounds listing it included), Coconut's
    writes of the block, the service's rows naming the event, and the hosts' log lines about the
    staff member around those writes."""
    staff_id = difference.staff_id
    lines = [f"about {difference.line()}:"]
    mailbox = actor.mailboxes.get(staff_id)
    if mailbox is None:
        return [*lines, "  no mailbox"]
    stored = {str(e["id"]): e for e in graph.events(mailbox, "all")}
    known = (
        set(stored)
        | {edit.event_id for edit in actor.own_edits if edit.staff_id == staff_id}
        | {t.event_id for t in actor.tampers if t.staff_id == staff_id}
        | journal.event_ids(mailbox)
    )
    if difference.event_id:
        known.add(difference.event_id)
    event_id = next((e for e in known if external_id_for(e) == difference.external_id), "")
    if not event_id:
        lines.append("  from an event no request, edit or calendar names")
    else:
        event = stored.get(event_id)
        key = coconut_key(event) if event is not None else ""
        owner = f"the service's event for {key}" if key else "a person's own event"
        if event is None:
            where = "gone from the mailbox for good"
        else:
            folder = event.get("folder")
            name = folder.get("name") if isinstance(folder, dict) else folder
            where = f"now in {name}, showAs {event.get('showAs')}"
        lines.append(f"  from event {event_id[-12:]}: {owner}, {where}")
        lines += [
            "  " + edit.line()
            for edit in actor.own_edits
            if edit.staff_id == staff_id and edit.event_id == event_id
        ]
        lines += [
            f"  {t.at:8.2f}s a person: {t.kind} the service's event {t.item_key}"
            for t in actor.tampers
            if t.staff_id == staff_id and t.event_id == event_id
        ]
        lines += _rows_naming(connection_string, staff_id, event_id)
        lines += ["  graph " + line for line in journal.about_event(mailbox, event_id)]
    writes = coconut.about(staff_id, difference.external_id)
    lines += ["  " + write.line() for write in writes]
    lines += _staff_record(connection_string, staff_id)
    for write in writes[-3:]:
        lines += [
            "  around the write: " + line
            for line in journal.delta_rounds(mailbox, write.at - 20, write.at + 20)
        ]
        lines += _log_lines(logs, staff_id, write.wall)
    return lines


def _rows_naming(connection_string: str, staff_id: str, event_id: str) -> list[str]:
    tables = TableServiceClient.from_connection_string(connection_string)
    try:
        rows = tables.get_table_client(STAFF_ITEMS_TABLE).query_entities(
            "PartitionKey eq @pk and EventId eq @event",
            parameters={"pk": table_key(staff_id), "event": event_id},
        )
        return [
            f"  staffitems row {row['RowKey']} names it: {_columns(dict(row), _LINK_COLUMNS)}"
            for row in rows
        ] or ["  no staffitems row names it"]
    except Exception as error:
        return [f"  staffitems rows: unreadable ({type(error).__name__})"]


def _staff_record(connection_string: str, staff_id: str) -> list[str]:
    tables = TableServiceClient.from_connection_string(connection_string)
    try:
        staff = dict(tables.get_table_client(STAFF_TABLE).get_entity(table_key(staff_id), "staff"))
    except Exception as error:
        return [f"  staff record: none ({type(error).__name__})"]
    columns = (*_STAFF_COLUMNS, "RoundStartedAt", "InitialisedAt")
    return [f"  staff record: {_columns(staff, columns)}"]


def _log_lines(logs: list[Path], staff_id: str, wall: str, seconds: float = 20.0) -> list[str]:
    """The hosts' lines about `staff_id` logged within `seconds` after `wall` (a pass logs
    when it ends)."""
    moment = datetime.strptime(wall, "%H:%M:%S.%f")
    lines = []
    for log in logs:
        if not log.exists():
            continue
        for text in log.read_text(errors="replace").splitlines():
            if f"staff_id={staff_id} " not in text or "operation=staff_sync " not in text:
                continue
            if "detail=lease held" in text or "detail=retry already scheduled" in text:
                continue
            try:
                logged = datetime.strptime(text[11:23], "%H:%M:%S,%f")
            except ValueError:
                continue
            if 0 <= (logged - moment).total_seconds() <= seconds:
                lines.append(f"  {log.name}: {text[11:23]} {text.split('|', 1)[-1][:200]}")
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
