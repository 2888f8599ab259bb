"""Helpers for `test_graph_realities.py`: staff members whose mailboxes Graph serves (or not),
bookings, and readers for what the service left behind: the Graph emulator's folders, request
counters, fault rules and subscriptions, the service's tables on Azurite, and the ops API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.payloads import Envelope, StaffRef
from local.graph_emulator.server import GraphEmulator
from local.graph_emulator.timezones import parse_date_time_time_zone
from local.stack import LocalStack
from sync.names import STAFF_ITEMS_TABLE, STAFF_TABLE
from sync.ops.client import OpsClient, OpsRefused
from sync.storage.keys import table_key
from tests.integration.conftest import coconut_key

# The local host accepts any function key; the ops client sends one as in Azure.
ADMIN_KEY = "local-admin-key"
SERVICE = payloads.service("S-7", "Opening an account")
BRANCH = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")
# Inside the import window (a day before the first sync to 180 days ahead), so that delta
# reports what a person does to these events.
SOON = (datetime.now(UTC) + timedelta(days=7)).replace(hour=14, minute=0, second=0, microsecond=0)


# --- staff members and bookings ------------------------------------------------------------------


@dataclass(frozen=True)
class Advisor:
    """A staff member on Coconut's roster and their Microsoft 365 user (`box`: the user id)."""

    ref: StaffRef
    box: str

    @property
    def staff_id(self) -> str:
        return self.ref["id"]


def new_advisor(
    stack: LocalStack,
    first_name: str = "Jane",
    *,
    time_zone: str = "Eastern Standard Time",
    mailbox_error: str | None = None,
    access_denied: bool = False,
) -> Advisor:
    """A staff member no other test knows. `mailbox_error`: the user is in the directory but
    Graph cannot serve the mailbox (404 with that code); `access_denied`: outside the app's RBAC
    scope (403)."""
    tag = uuid.uuid4().hex[:8]
    email = f"{first_name.lower()}.{tag}@bank.example"
    ref = payloads.staff_member(f"U-{tag}", email, first_name, "Doe")
    stack.coconut.add_user(ref["id"], email, first_name, "Doe")
    user = stack.graph.add_user(
        f"{first_name.lower()}.{tag}@bank.onmicrosoft.com",
        mail=email,
        time_zone=time_zone,
        has_mailbox=mailbox_error is None,
        mailbox_error=mailbox_error or "MailboxNotEnabledForRESTAPI",
        access_denied=access_denied,
    )
    return Advisor(ref, user.id)


def new_coconut() -> Coconut:
    """A Coconut whose appointment ids no other test uses (stacks are shared per module)."""
    return Coconut(first_appointment_number=uuid.uuid4().int % 10**9)


def book(
    coconut: Coconut, staff: list[Advisor], start: datetime = SOON, minutes: int = 30
) -> Envelope:
    return coconut.book(
        staff=[advisor.ref for advisor in staff],
        start=start,
        end=start + timedelta(minutes=minutes),
        service=SERVICE,
        location=BRANCH,
    )


def key(envelope: Mapping[str, Any]) -> str:
    """The service's key for a booked appointment (its Coconut-id extended property value)."""
    return f"appointment:{envelope['data']['id']}"


def appointment_id(envelope: Mapping[str, Any]) -> str:
    return str(envelope["data"]["id"])


# --- the Graph emulator --------------------------------------------------------------------------


def copies(
    graph: GraphEmulator, box: str, item_key: str, folder: str | None = None
) -> list[dict[str, Any]]:
    """The events for one item in a folder of the mailbox: the primary calendar by default,
    "deletedItems", or another calendar by name."""
    return [e for e in graph.events(box, folder) if coconut_key(e) == item_key]


def instant(value: Mapping[str, Any]) -> datetime:
    """The moment a stored `dateTimeTimeZone` stands for, read as Graph reads it."""
    moment, _ = parse_date_time_time_zone(value, "start")
    return moment


def requests_to(graph: GraphEmulator, box: str) -> int:
    """Every request that reached Graph for the mailbox so far, whatever its answer."""
    return sum(sum(statuses.values()) for statuses in answers(graph, box).values())


def answers(graph: GraphEmulator, box: str) -> dict[str, dict[str, int]]:
    """Requests for the mailbox so far: method -> status -> count."""
    with graph.state.lock:
        mailboxes = graph.state.counters.to_json()["mailboxes"]
    found: dict[str, dict[str, int]] = mailboxes.get(box, {}).get("requests", {})
    return found


def fired(graph: GraphEmulator, rule: str) -> int:
    """How often a fault rule has fired."""
    for found in graph.state.faults.to_json()["rules"]:
        if found["name"] == rule:
            return int(found["fired"])
    raise KeyError(rule)


def subscriptions_of(graph: GraphEmulator, box: str) -> list[dict[str, Any]]:
    """The app's live subscriptions on the mailbox, in Graph's JSON shape."""
    return [s.to_graph() for s in graph.state.subscriptions() if s.mailbox == box]


# --- the service's tables ------------------------------------------------------------------------


class ServiceTables:
    """The worker's `staff` and `staffitems` tables on the stack's Azurite."""

    def __init__(self, stack: LocalStack) -> None:
        self._service = TableServiceClient.from_connection_string(stack.azurite.connection_string)

    def close(self) -> None:
        self._service.close()

    def _partition(self, table: str, staff_id: str) -> list[dict[str, Any]]:
        client = self._service.get_table_client(table)
        try:
            query = client.query_entities(
                "PartitionKey eq @pk", parameters={"pk": table_key(staff_id)}
            )
            return [dict(entity) for entity in query]
        except ResourceNotFoundError:
            return []

    def staff(self, staff_id: str) -> dict[str, Any]:
        """The staff record's columns ({} until it exists)."""
        found = self._partition(STAFF_TABLE, staff_id)
        return found[0] if found else {}

    def row(self, staff_id: str, item_key: str) -> dict[str, Any]:
        """The item's row in the staff member's partition ({} if none)."""
        for row in self._partition(STAFF_ITEMS_TABLE, staff_id):
            if row["RowKey"] == table_key(item_key):
                return row
        return {}

    def settled(self, staff_id: str) -> bool:
        """A run gave the staff member a status and their lease back, and no row waits."""
        record = self.staff(staff_id)
        rows = self._partition(STAFF_ITEMS_TABLE, staff_id)
        return (
            bool(record.get("Status"))
            and not record.get("LeaseOwner")
            and not any(r.get("Pending") or r.get("PendingCreate") for r in rows)
        )

    def pretend_failing_since(self, staff_id: str, since: datetime, failures: int) -> bool:
        """Rewrite when the mailbox started failing and how often it has, as if it had been so
        for longer than a test can wait; only between runs (no lease held, the next retry more
        than a second away) and only if the record did not change meanwhile."""
        client = self._service.get_table_client(STAFF_TABLE)
        entity = client.get_entity(table_key(staff_id), "staff")
        until = entity.get("ThrottledUntil")
        between_runs = (
            not entity.get("LeaseOwner")
            and isinstance(until, datetime)
            and until > datetime.now(UTC) + timedelta(seconds=1)
        )
        if not between_runs:
            return False
        changed = {
            "PartitionKey": entity["PartitionKey"],
            "RowKey": entity["RowKey"],
            "FailingSince": since,
            "Failures": failures,
        }
        try:
            client.update_entity(
                changed,
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False
        return True


@contextmanager
def service_tables(stack: LocalStack) -> Iterator[ServiceTables]:
    tables = ServiceTables(stack)
    try:
        yield tables
    finally:
        tables.close()


# --- the ops API ---------------------------------------------------------------------------------


def ops_client(stack: LocalStack) -> OpsClient:
    assert stack.host is not None, "the stack is not started"
    return OpsClient(stack.host.base_url)


def detail(ops: OpsClient, staff_id: str) -> dict[str, Any]:
    """The staff member's ops detail ({} while they have no record)."""
    try:
        return ops.detail(staff_id)
    except OpsRefused as refused:
        if refused.code == "unknown_staff":
            return {}
        raise


def poisoned(ops: OpsClient, staff_id: str) -> list[dict[str, Any]]:
    """The staff member's messages on the poison queue."""
    return [m for m in ops.poison()["messages"] if m["staff_id"] == staff_id]
