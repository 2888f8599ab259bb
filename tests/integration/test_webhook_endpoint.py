"""The webhook endpoint end to end, through the real local Functions host.

The contract's every case is a unit test of the receiver (`tests/sync/webhooks/test_receiver.py`);
here a few run through the host, what only the whole stack shows: a delivery synced into the
calendar, a duplicate that writes once, the host's own handling of the body (1 MiB and one byte
more), the settings (a previous secret mid-rotation), a 503 while storage is down, and refusals
that reach neither the worker nor Graph. Outcomes are read back from the response, the service's
tables on Azurite and the Graph emulator's mailboxes and request counters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient

from local.azurite import Azurite
from local.coconut_emulator.webhooks import bad_deliveries as bad
from local.coconut_emulator.webhooks.delivery import PreparedDelivery
from local.coconut_emulator.webhooks.payloads import StaffRef
from local.graph_emulator.server import GraphEmulator
from local.stack import LocalStack
from sync.names import ITEMS_TABLE, STAFF_ITEMS_TABLE, STAFF_TABLE
from sync.storage.keys import table_key
from tests.integration.conftest import (
    deliver,
    events_by_key,
    eventually,
    landed,
    synced_events,
)
from tests.sync.webhooks.deliveries import (
    PREVIOUS_SECRET,
    REFUSALS,
    SECRETS,
    SERVICE,
    STAFF_FIRST,
    STAFF_LAST,
    START,
    VIOLATION_PATHS,
    VIOLATIONS,
    absence,
    booking,
    item_key,
    named_fields,
    new_coconut,
    new_staff_member,
    now,
    personal_data_in,
    signed,
    violation,
)

pytestmark = pytest.mark.integration

# The periodic cycle (the safety net, with tests of its own) fires once a year here, so that no
# sync runs that a delivery did not ask for.
TIMER_OFF = "0 0 0 1 1 *"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack for the module, mid-rotation: a previous webhook secret is still accepted."""
    log = tmp_path_factory.mktemp("host") / "host.log"
    rotating = {"COCONUT_WEBHOOK_SECRET_PREVIOUS": PREVIOUS_SECRET}
    with LocalStack(host_log=log, extra_settings=rotating, timer_schedule=TIMER_OFF) as running:
        yield running


# --- reading outcomes back ----------------------------------------------------------------------


class StateStore:
    """The service's tables on the stack's Azurite, read the way the service keys them."""

    def __init__(self, connection_string: str) -> None:
        self._tables = TableServiceClient.from_connection_string(connection_string)

    def _partition(self, table: str, key: str) -> list[dict[str, Any]]:
        client = self._tables.get_table_client(table)
        try:
            return [
                dict(entity)
                for entity in client.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": table_key(key)}
                )
            ]
        except ResourceNotFoundError:  # the table does not exist yet: nothing recorded
            return []

    def item(self, item_key: str) -> dict[str, Any] | None:
        """The desired-state record of one Coconut item, if any."""
        found = self._partition(ITEMS_TABLE, item_key)
        return found[0] if found else None

    def staff_items(self, staff_id: str) -> list[dict[str, Any]]:
        """The staff member's index of items to reconcile (one row per item)."""
        return self._partition(STAFF_ITEMS_TABLE, staff_id)

    def staff_record(self, staff_id: str) -> dict[str, Any] | None:
        found = self._partition(STAFF_TABLE, staff_id)
        return found[0] if found else None

    def run_finished(self, staff_id: str) -> bool:
        """A worker ran for the staff member and released their lease."""
        record = self.staff_record(staff_id)
        return record is not None and bool(record.get("Status")) and not record.get("LeaseOwner")

    def close(self) -> None:
        self._tables.close()


@pytest.fixture
def store(stack: LocalStack) -> Iterator[StateStore]:
    state = StateStore(stack.azurite.connection_string)
    yield state
    state.close()


def graph_writes(graph: GraphEmulator, mailbox: str) -> dict[str, int]:
    """Requests that reached Graph for a mailbox, by method (any status; reads too)."""
    with graph.state.lock:
        methods = graph.state.counters.to_json()["mailboxes"].get(mailbox, {}).get("requests", {})
        return {method: sum(statuses.values()) for method, statuses in methods.items()}


# --- the people -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advisor:
    """A staff member with their own Microsoft 365 mailbox, unique to one test."""

    ref: StaffRef
    mailbox: str

    @property
    def staff_id(self) -> str:
        return self.ref["id"]


def new_advisor(stack: LocalStack) -> Advisor:
    """On Coconut's roster and in Microsoft 365."""
    ref = new_staff_member()
    stack.coconut.add_user(ref["id"], ref["email"], STAFF_FIRST, STAFF_LAST)
    user = stack.graph.add_user(
        f"{ref['email'].split('@')[0]}@bank.onmicrosoft.com",
        mail=ref["email"],
        time_zone="Eastern Standard Time",
    )
    return Advisor(ref, user.id)


@pytest.fixture
def advisor(stack: LocalStack) -> Advisor:
    return new_advisor(stack)


def changed_in_coconut(stack: LocalStack, envelope: Mapping[str, Any]) -> None:
    """Coconut's own record (which the service lists) changes before it sends the webhook."""
    stack.coconut.record.apply(envelope)


async def post(stack: LocalStack, prepared: PreparedDelivery) -> httpx.Response:
    """One POST exactly as prepared (no retry), keeping the response body; Coconut's record is
    left as it is (see `changed_in_coconut`)."""
    async with httpx.AsyncClient(timeout=60.0) as client:
        return await client.post(stack.webhook_url, content=prepared.body, headers=prepared.headers)


def assert_no_personal_data(text: str) -> None:
    leaked = personal_data_in(text)
    assert not leaked, f"the response echoes personal data: {leaked}"


def assert_nothing_recorded(store: StateStore, advisor: Advisor, key: str) -> None:
    """Deliveries are recorded before they are answered: the tables are final at the answer."""
    assert store.item(key) is None, "the item was recorded"
    assert store.staff_items(advisor.staff_id) == [], "a sync was marked as needed"
    assert store.staff_record(advisor.staff_id) is None, "a worker ran for the staff member"


# --- 202 ---------------------------------------------------------------------------------------


async def test_new_change_is_accepted_recorded_and_synced(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    booked = booking(new_coconut(), advisor.ref)
    changed_in_coconut(stack, booked)

    response = await post(stack, signed(booked))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    recorded = store.item(item_key(booked))
    assert recorded is not None, "recorded before the answer"
    assert recorded["Revision"] == 1
    [event] = await eventually(lambda: synced_events(stack.graph, advisor.mailbox))
    assert event["subject"] == SERVICE["name"]


async def test_a_redelivery_is_a_duplicate_and_writes_the_event_once(
    stack: LocalStack, advisor: Advisor
) -> None:
    coconut = new_coconut()
    booked = booking(coconut, advisor.ref)
    changed_in_coconut(stack, booked)
    assert (await post(stack, signed(booked))).status_code == 202

    again = await post(stack, signed(booked))  # same delivery id and body, signed anew

    assert again.status_code == 202
    assert again.json() == {"status": "duplicate"}
    # A later booking as a barrier: once its event is written, the syncs both deliveries asked
    # for have run.
    control = booking(coconut, advisor.ref, start=START + timedelta(days=1))
    assert await deliver(stack, control) == [202]
    found = await landed(stack.graph, advisor.mailbox, item_key(control))
    assert len(found[item_key(booked)]) == 1
    writes = graph_writes(stack.graph, advisor.mailbox)
    assert (writes.get("POST"), writes.get("PATCH", 0), writes.get("DELETE", 0)) == (2, 0, 0)


async def test_a_delivery_signed_with_the_previous_secret_is_accepted_during_rotation(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    """COCONUT_WEBHOOK_SECRET_PREVIOUS reaches the receiver."""
    booked = booking(new_coconut(), advisor.ref)
    changed_in_coconut(stack, booked)

    response = await post(stack, bad.prepare(booked, [PREVIOUS_SECRET], now()))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    assert store.item(item_key(booked)) is not None


async def test_the_host_passes_a_body_of_exactly_one_mib_and_refuses_one_byte_more(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    coconut = new_coconut()
    booked, refused = booking(coconut, advisor.ref), booking(coconut, advisor.ref)
    limit = bad.oversize_body(booked, SECRETS, now(), size=bad.MAX_BODY_BYTES)
    assert len(limit.body) == bad.MAX_BODY_BYTES
    changed_in_coconut(stack, booked)

    assert (await post(stack, limit)).status_code == 202
    over = await post(stack, bad.oversize_body(refused, SECRETS, now()))

    assert over.status_code == 413
    assert over.json() == {"error": "body larger than 1 MiB"}
    assert store.item(item_key(booked)) is not None
    assert store.item(item_key(refused)) is None


# One refusal of each kind: the receiver's unit tests go through the whole catalogue.
REFUSED_END_TO_END = (
    "401 wrong secret",
    "401 timestamp 301 s old",
    "413 no signature header",
    "415 text/plain",
    "400 cut short",
)
VIOLATED_END_TO_END = ("appointment: start missing", "absence: staff a list instead of one")


async def test_refused_deliveries_leave_no_trace_and_reach_neither_the_worker_nor_graph(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    """Refusals of each kind for one staff member, then one good delivery as a barrier: once its
    event is written, anything a refusal had queued for this staff member would be too."""
    coconut = new_coconut()
    booked, away = booking(coconut, advisor.ref), absence(coconut, advisor.ref)
    for name in REFUSED_END_TO_END:
        prepared = REFUSALS[name](booked, now())
        response = await post(stack, prepared)
        assert response.status_code == prepared.expected_status, name
        assert response.json()["error"], name
        assert_no_personal_data(response.text)
    for label, resource, name in VIOLATIONS:
        if label not in VIOLATED_END_TO_END:
            continue
        envelope = booked if resource is booking else away
        body = violation(resource, name)(envelope)
        prepared = bad.prepare(body, SECRETS, now(), delivery_id=str(envelope["id"]))
        response = await post(stack, prepared)
        assert response.status_code == 400, label
        assert VIOLATION_PATHS[name] in named_fields(response.json()["error"]), label
        assert_no_personal_data(response.text)
    assert_nothing_recorded(store, advisor, item_key(booked))
    assert store.item(item_key(away)) is None

    control = booking(coconut, advisor.ref, start=START + timedelta(days=1))
    assert await deliver(stack, control) == [202]

    await eventually(lambda: graph_writes(stack.graph, advisor.mailbox).get("POST") == 1)
    assert list(events_by_key(stack.graph, advisor.mailbox)) == [item_key(control)]
    writes = graph_writes(stack.graph, advisor.mailbox)
    assert writes.get("PATCH", 0) == writes.get("DELETE", 0) == 0, writes
    assert store.item(item_key(booked)) is None
    assert store.item(item_key(away)) is None
    rows = store.staff_items(advisor.staff_id)
    assert [row["RowKey"] for row in rows] == [table_key(item_key(control))]


# --- 503: the state store is down ----------------------------------------------------------------


@pytest.fixture
def outage_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack of its own whose Azurite keeps its data on disk, so it can go down and come back
    on the same ports with what it held, as a storage account does after an outage."""
    azurite = Azurite(data_dir=tmp_path / "azurite")
    with LocalStack(
        host_log=tmp_path / "host.log", azurite=azurite, timer_schedule=TIMER_OFF
    ) as running:
        yield running


async def test_state_store_outage_is_503_with_nothing_half_written_and_redelivery_syncs(
    outage_stack: LocalStack,
) -> None:
    stack = outage_stack
    advisor = new_advisor(stack)
    store = StateStore(stack.azurite.connection_string)
    coconut = new_coconut()
    before = booking(coconut, advisor.ref)
    assert await deliver(stack, before) == [202]
    await eventually(lambda: synced_events(stack.graph, advisor.mailbox))
    # The outage is for the webhook: let the worker's run finish and give its lease back first
    # (a run cut off by the outage keeps the staff member's lease until it expires).
    await eventually(lambda: store.run_finished(advisor.staff_id))

    during = booking(coconut, advisor.ref, start=START + timedelta(days=2))
    changed_in_coconut(stack, during)
    stack.azurite.stop()
    try:
        response = await post(stack, signed(during))
    finally:
        stack.azurite.start()

    assert response.status_code == 503
    assert_no_personal_data(response.text)
    assert store.item(item_key(during)) is None
    rows = store.staff_items(advisor.staff_id)
    assert [row["RowKey"] for row in rows] == [table_key(item_key(before))]

    assert await deliver(stack, during) == [202]  # Coconut retries the same delivery
    expected = {item_key(before), item_key(during)}
    # The host's queue poller may still be in its storage retry back-off from the outage.
    await eventually(
        lambda: set(events_by_key(stack.graph, advisor.mailbox)) == expected, within=40
    )
    assert all(len(e) == 1 for e in events_by_key(stack.graph, advisor.mailbox).values())
    store.close()
