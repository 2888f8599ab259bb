"""The webhook contract (contracts/coconut-webhooks.md) through the real local Functions host.

Every status the contract names, read back from where a delivery lands: the response, the
service's tables on Azurite, the worker's staff record and the Graph emulator's mailboxes and
request counters. A refused delivery must leave no trace in any of them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient

from local.azurite import Azurite
from local.coconut_emulator.webhooks import bad_deliveries as bad
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.delivery import PreparedDelivery
from local.coconut_emulator.webhooks.payloads import StaffRef
from local.coconut_emulator.webhooks.signing import SIGNATURE_HEADER, encode_body
from local.graph_emulator.server import GraphEmulator
from local.stack import WEBHOOK_SECRET, LocalStack
from sync.names import ITEMS_TABLE, STAFF_ITEMS_TABLE, STAFF_TABLE
from sync.storage.keys import table_key
from tests.integration.conftest import deliver, events_by_key, eventually, synced_events

pytestmark = pytest.mark.integration

PREVIOUS_SECRET = "previous-webhook-secret"
# The periodic cycle (the safety net, with tests of its own) fires once a year here, so that no
# sync runs that a delivery did not ask for.
TIMER_OFF = "0 0 0 1 1 *"
SECRETS = [WEBHOOK_SECRET]
TORONTO = ZoneInfo("America/Toronto")
START = datetime(2026, 12, 1, 14, 0, tzinfo=TORONTO)
SERVICE = payloads.service("S-7", "Opening an account")
BRANCH = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")

# Distinctive personal values put in every payload: none may come back in an error body.
CUSTOMER = payloads.attendee(
    "C-9",
    "Zephyrine",
    "Quackenbush",
    email="zephyrine.quackenbush@example.net",
    cell_phone="+1 416 555 0142",
    phone="+1 416 555 0173",
    notes="Brings a guide dog named Biscuit",
    answers=[payloads.answer("Account holders?", "Joint with Marguerite Oyelaran")],
)
APPOINTMENT_NOTES = "Prefers Portuguese; uses a hearing aid"
STAFF_FIRST, STAFF_LAST = "Quinta", "Ravenscroft"
PERSONAL_VALUES = (
    "Zephyrine",
    "Quackenbush",
    "zephyrine.quackenbush",
    "555 0142",
    "555 0173",
    "Biscuit",
    "Marguerite",
    "Oyelaran",
    "Portuguese",
    STAFF_FIRST,
    STAFF_LAST,
    "@bank.example",
)


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
    """Requests that reached Graph for a mailbox, by method (any status)."""
    with graph.state.lock:
        methods = graph.state.counters.to_json()["mailboxes"].get(mailbox, {}).get("requests", {})
        return {method: sum(statuses.values()) for method, statuses in methods.items()}


# --- the people and payloads --------------------------------------------------------------------


@dataclass(frozen=True)
class Advisor:
    """A staff member with their own Microsoft 365 mailbox, unique to one test."""

    ref: StaffRef
    mailbox: str

    @property
    def staff_id(self) -> str:
        return self.ref["id"]


def new_advisor(stack: LocalStack) -> Advisor:
    """On Coconut's roster (the periodic cycle stops syncing anyone who is not) and in M365."""
    tag = uuid.uuid4().hex[:8]
    ref = payloads.staff_member(f"U-{tag}", f"q.{tag}@bank.example", STAFF_FIRST, STAFF_LAST)
    stack.coconut.add_user(ref["id"], ref["email"], STAFF_FIRST, STAFF_LAST)
    user = stack.graph.add_user(
        f"q.{tag}@bank.onmicrosoft.com", mail=ref["email"], time_zone="Eastern Standard Time"
    )
    return Advisor(ref, user.id)


@pytest.fixture
def advisor(stack: LocalStack) -> Advisor:
    return new_advisor(stack)


def new_coconut() -> Coconut:
    return Coconut(first_appointment_number=uuid.uuid4().int % 10**9)


def booking(coconut: Coconut, advisor: Advisor, start: datetime = START) -> dict[str, Any]:
    """A booked appointment full of personal data, as Coconut sends it."""
    return dict(
        coconut.book(
            staff=[advisor.ref],
            start=start,
            end=start + timedelta(minutes=30),
            service=SERVICE,
            location=BRANCH,
            attendees=[CUSTOMER],
            notes=APPOINTMENT_NOTES,
        )
    )


def absence(coconut: Coconut, advisor: Advisor) -> dict[str, Any]:
    return dict(
        coconut.record_absence(
            staff=advisor.ref,
            start=datetime(2026, 12, 20, tzinfo=TORONTO),
            end=datetime(2027, 1, 4, tzinfo=TORONTO),
            title="Vacation",
            all_day=True,
            absence_id=f"N-{uuid.uuid4().hex[:8]}",
        )
    )


def item_key(envelope: Mapping[str, Any]) -> str:
    data = envelope["data"]
    kind = "appointment" if data["type"] == "appointments" else "unavailability"
    return f"{kind}:{data['id']}"


def now() -> int:
    return int(time.time())


def signed(envelope: Mapping[str, Any], **options: Any) -> PreparedDelivery:
    """A correct delivery, signed with the current secret at the current time."""
    return bad.prepare(envelope, SECRETS, now(), **options)


async def post(stack: LocalStack, prepared: PreparedDelivery) -> httpx.Response:
    """One POST exactly as prepared (no retry), keeping the response body."""
    async with httpx.AsyncClient(timeout=60.0) as client:
        return await client.post(stack.webhook_url, content=prepared.body, headers=prepared.headers)


# --- refusals: each breaks one rule, or several to show which rule is checked first -------------

Refusal = Callable[[Mapping[str, Any], int], PreparedDelivery]
"""Builds a refused delivery from a correct envelope and the current Unix time."""

NO_START = bad.drop("data.attributes.start")


def _cut_short(envelope: Mapping[str, Any]) -> bytes:
    body = encode_body(envelope)
    return body[: len(body) // 2]


def _unsigned(prepared: PreparedDelivery) -> PreparedDelivery:
    headers = {k: v for k, v in prepared.headers.items() if k != SIGNATURE_HEADER}
    return PreparedDelivery(prepared.body, headers, prepared.delivery_id, prepared.expected_status)


def _declared_as_text(prepared: PreparedDelivery) -> PreparedDelivery:
    headers = {**prepared.headers, "Content-Type": "text/plain"}
    return PreparedDelivery(prepared.body, headers, prepared.delivery_id, prepared.expected_status)


UNAUTHENTICATED: dict[str, Refusal] = {
    "wrong secret": lambda e, t: bad.wrong_secret(e, t),
    "tampered body": lambda e, t: bad.tampered_body(e, SECRETS, t),
    "missing signature": lambda e, t: bad.missing_signature(e, SECRETS, t),
    "unknown signature scheme": lambda e, t: bad.unknown_signature_scheme(e, SECRETS, t),
    "missing timestamp": lambda e, t: bad.missing_timestamp(e, SECRETS, t),
    "timestamp 301 s old": lambda e, t: bad.stale_timestamp(e, SECRETS, t),
    # Whole seconds, floored: a few seconds of margin keep it outside while the request travels.
    "timestamp 305 s ahead": lambda e, t: bad.future_timestamp(e, SECRETS, t, ahead=305),
    "timestamp a day old": lambda e, t: bad.stale_timestamp(e, SECRETS, t, age=86_400),
}

TOO_LARGE: dict[str, Refusal] = {
    "signed, one byte over": lambda e, t: bad.oversize_body(e, SECRETS, t),
    # Size comes before authentication: an oversize body that is not authentic is still 413.
    "wrong secret": lambda e, t: bad.oversize_body(e, [bad.WRONG_SECRET], t),
    "no signature header": lambda e, t: _unsigned(bad.oversize_body(e, SECRETS, t)),
}

NOT_JSON_CONTENT: dict[str, Refusal] = {
    "text/plain": lambda e, t: bad.wrong_content_type(e, SECRETS, t),
    "no content type": lambda e, t: bad.wrong_content_type(e, SECRETS, t, content_type=None),
    "form": lambda e, t: bad.wrong_content_type(
        e, SECRETS, t, content_type="application/x-www-form-urlencoded"
    ),
}

NOT_JSON: dict[str, Refusal] = {
    "cut short": lambda e, t: bad.not_json(e, SECRETS, t),
    "empty body": lambda e, t: bad.prepare(
        b"", SECRETS, t, delivery_id=str(e["id"]), expected_status=400
    ),
    "NaN": lambda e, t: bad.prepare(
        b'{"id": NaN}', SECRETS, t, delivery_id=str(e["id"]), expected_status=400
    ),
}

FAULT_ORDER: dict[str, Refusal] = {
    # size > authentication > content type > body: the first broken rule decides.
    "oversize, wrong secret, text: 413": lambda e, t: _declared_as_text(
        bad.oversize_body(e, [bad.WRONG_SECRET], t)
    ),
    "wrong secret, text: 401": lambda e, t: bad.prepare(
        e, [bad.WRONG_SECRET], t, content_type="text/plain", expected_status=401
    ),
    "wrong secret, not JSON: 401": lambda e, t: bad.prepare(
        _cut_short(e), [bad.WRONG_SECRET], t, delivery_id=str(e["id"]), expected_status=401
    ),
    "stale timestamp, schema violation: 401": lambda e, t: bad.prepare(
        bad.violating(e, NO_START), SECRETS, t - 400, expected_status=401
    ),
    "text, not JSON: 415": lambda e, t: bad.prepare(
        _cut_short(e),
        SECRETS,
        t,
        delivery_id=str(e["id"]),
        content_type="text/plain",
        expected_status=415,
    ),
    "text, schema violation: 415": lambda e, t: bad.prepare(
        bad.violating(e, NO_START), SECRETS, t, content_type="text/plain", expected_status=415
    ),
}

REFUSALS: dict[str, Refusal] = {
    **{f"401 {name}": refusal for name, refusal in UNAUTHENTICATED.items()},
    **{f"413 {name}": refusal for name, refusal in TOO_LARGE.items()},
    **{f"415 {name}": refusal for name, refusal in NOT_JSON_CONTENT.items()},
    **{f"400 {name}": refusal for name, refusal in NOT_JSON.items()},
    **{f"order: {name}": refusal for name, refusal in FAULT_ORDER.items()},
}

ATTRIBUTES = "data.attributes"
# The field path a 400 must name for each violation in the emulator's catalogue.
VIOLATION_PATHS: dict[str, str] = {
    "envelope without id": "id",
    "envelope without type": "type",
    "envelope without created_at": "created_at",
    "created_at not a timestamp": "created_at",
    "envelope without data": "data",
    "data not an object": "data",
    "data without id": "data.id",
    "data without attributes": ATTRIBUTES,
    "revision missing": f"{ATTRIBUTES}.revision",
    "revision not an integer": f"{ATTRIBUTES}.revision",
    "revision below 1": f"{ATTRIBUTES}.revision",
    "start missing": f"{ATTRIBUTES}.start",
    "end missing": f"{ATTRIBUTES}.end",
    "start without offset": f"{ATTRIBUTES}.start",
    "start not a date": f"{ATTRIBUTES}.start",
    "end before start": f"{ATTRIBUTES}.end",
    "end equal to start": f"{ATTRIBUTES}.end",
    "duration over 366 days": f"{ATTRIBUTES}.end",
    "status unknown": f"{ATTRIBUTES}.status",
    "meeting_method out of range": f"{ATTRIBUTES}.meeting_method",
    "meeting_method not an integer": f"{ATTRIBUTES}.meeting_method",
    "service missing": f"{ATTRIBUTES}.service",
    "staff missing": f"{ATTRIBUTES}.staff",
    "staff not a list": f"{ATTRIBUTES}.staff",
    "no staff on a booked appointment": f"{ATTRIBUTES}.staff",
    "too many staff": f"{ATTRIBUTES}.staff",
    "attendees not a list": f"{ATTRIBUTES}.attendees",
    "too many attendees": f"{ATTRIBUTES}.attendees",
    "too many answers": f"{ATTRIBUTES}.attendees.0.answers",
    "notes too long": f"{ATTRIBUTES}.notes",
    "attendee notes too long": f"{ATTRIBUTES}.attendees.0.notes",
    "string too long": f"{ATTRIBUTES}.service.name",
    "all_day not a boolean": f"{ATTRIBUTES}.all_day",
    "staff a list instead of one": f"{ATTRIBUTES}.staff",
    "title too long": f"{ATTRIBUTES}.title",
}

Builder = Callable[[Coconut, Advisor], dict[str, Any]]
VIOLATIONS: list[tuple[str, Builder, str]] = [
    *((f"appointment: {name}", booking, name) for name in bad.APPOINTMENT_VIOLATIONS),
    *((f"absence: {name}", absence, name) for name in bad.UNAVAILABILITY_VIOLATIONS),
]


def violation(resource: Builder, name: str) -> Callable[[Mapping[str, Any]], bytes]:
    catalogue = bad.APPOINTMENT_VIOLATIONS if resource is booking else bad.UNAVAILABILITY_VIOLATIONS
    return lambda envelope: encode_body(bad.violating(envelope, catalogue[name]))


def assert_no_personal_data(text: str) -> None:
    leaked = [value for value in PERSONAL_VALUES if value.lower() in text.lower()]
    assert not leaked, f"the response echoes personal data: {leaked}"


def assert_nothing_recorded(store: StateStore, advisor: Advisor, key: str) -> None:
    """Deliveries are recorded before they are answered: the tables are final at the answer."""
    assert store.item(key) is None, "the item was recorded"
    assert store.staff_items(advisor.staff_id) == [], "a reconcile was asked for"
    assert store.staff_record(advisor.staff_id) is None, "a worker ran for the staff member"


# --- 202 ---------------------------------------------------------------------------------------


async def test_new_change_is_accepted_recorded_and_synced(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    booked = booking(new_coconut(), advisor)

    response = await post(stack, signed(booked))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    recorded = store.item(item_key(booked))
    assert recorded is not None, "recorded before the answer"
    assert recorded["Revision"] == 1
    [event] = await eventually(lambda: synced_events(stack.graph, advisor.mailbox))
    assert event["subject"] == SERVICE["name"]


async def test_redelivery_is_a_duplicate(stack: LocalStack, advisor: Advisor) -> None:
    booked = booking(new_coconut(), advisor)
    assert (await post(stack, signed(booked))).status_code == 202

    again = await post(stack, signed(booked))  # same delivery id and body, signed anew

    assert again.status_code == 202
    assert again.json() == {"status": "duplicate"}
    await eventually(lambda: synced_events(stack.graph, advisor.mailbox))
    assert len(synced_events(stack.graph, advisor.mailbox)) == 1


async def test_older_revision_is_stale_and_the_newer_one_stays(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    coconut = new_coconut()
    booked = booking(coconut, advisor)
    renoted = coconut.change_notes(booked["data"]["id"], "revision two")

    assert (await post(stack, signed(renoted))).json() == {"status": "accepted"}
    stale = await post(stack, signed(booked))

    assert stale.status_code == 202
    assert stale.json() == {"status": "stale"}
    recorded = store.item(item_key(booked))
    assert recorded is not None
    assert recorded["Revision"] == 2


async def test_unknown_event_type_is_accepted_and_ignored(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    booked = booking(new_coconut(), advisor)
    future = {**booked, "id": payloads.new_delivery_id(), "type": "appointment.checked_in"}

    response = await post(stack, signed(future))

    assert response.status_code == 202
    assert response.json() == {"status": "ignored"}
    assert_nothing_recorded(store, advisor, item_key(booked))


async def test_json_with_utf8_charset_is_accepted(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    booked = booking(new_coconut(), advisor)

    response = await post(stack, signed(booked, content_type="application/json; charset=utf-8"))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    assert store.item(item_key(booked)) is not None


@pytest.mark.parametrize("offset", [-290, 290], ids=["290 s old", "290 s ahead"])
async def test_timestamp_within_tolerance_is_accepted(
    stack: LocalStack, store: StateStore, advisor: Advisor, offset: int
) -> None:
    booked = booking(new_coconut(), advisor)

    response = await post(stack, bad.prepare(booked, SECRETS, now() + offset))

    assert response.status_code == 202
    assert store.item(item_key(booked)) is not None


@pytest.mark.parametrize(
    "secrets",
    [[PREVIOUS_SECRET], [WEBHOOK_SECRET, PREVIOUS_SECRET], [bad.WRONG_SECRET, PREVIOUS_SECRET]],
    ids=["previous only", "current and previous", "unknown and previous"],
)
async def test_delivery_signed_with_the_previous_secret_is_accepted_during_rotation(
    stack: LocalStack, store: StateStore, advisor: Advisor, secrets: list[str]
) -> None:
    booked = booking(new_coconut(), advisor)

    response = await post(stack, bad.prepare(booked, secrets, now()))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    assert store.item(item_key(booked)) is not None


async def test_body_of_exactly_one_mib_is_accepted(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    booked = booking(new_coconut(), advisor)
    limit = bad.oversize_body(booked, SECRETS, now(), size=bad.MAX_BODY_BYTES)
    assert len(limit.body) == bad.MAX_BODY_BYTES

    response = await post(stack, limit)

    assert response.status_code == 202
    assert store.item(item_key(booked)) is not None


# --- refused deliveries --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REFUSALS))
async def test_refused_delivery_gets_its_status_and_records_nothing(
    stack: LocalStack, store: StateStore, advisor: Advisor, name: str
) -> None:
    booked = booking(new_coconut(), advisor)
    prepared = REFUSALS[name](booked, now())

    response = await post(stack, prepared)

    assert response.status_code == prepared.expected_status
    assert "error" in response.json()
    assert_no_personal_data(response.text)
    assert_nothing_recorded(store, advisor, item_key(booked))


@pytest.mark.parametrize(
    ("resource", "name"), [(b, n) for _, b, n in VIOLATIONS], ids=[i for i, _, _ in VIOLATIONS]
)
async def test_schema_violation_is_400_naming_the_field_without_personal_data(
    stack: LocalStack, store: StateStore, advisor: Advisor, resource: Builder, name: str
) -> None:
    envelope = resource(new_coconut(), advisor)
    body = violation(resource, name)(envelope)

    response = await post(stack, bad.prepare(body, SECRETS, now(), delivery_id=str(envelope["id"])))

    assert response.status_code == 400
    error = response.json()["error"]
    named = [part.split(":")[0].strip() for part in error.split(";")]
    assert VIOLATION_PATHS[name] in named, f"{error!r} does not name {VIOLATION_PATHS[name]}"
    assert_no_personal_data(response.text)
    assert_nothing_recorded(store, advisor, item_key(envelope))


async def test_refused_deliveries_reach_neither_the_worker_nor_graph(
    stack: LocalStack, store: StateStore, advisor: Advisor
) -> None:
    """Every kind of refusal for one staff member, then one good delivery as a barrier: once its
    event is written, anything a refusal had queued for this staff member would be too."""
    coconut = new_coconut()
    booked, away = booking(coconut, advisor), absence(coconut, advisor)
    statuses: dict[str, int] = {}
    for name, refusal in REFUSALS.items():
        statuses[name] = (await post(stack, refusal(booked, now()))).status_code
    for label, resource, name in VIOLATIONS:
        envelope = booked if resource is booking else away
        body = violation(resource, name)(envelope)
        prepared = bad.prepare(body, SECRETS, now(), delivery_id=str(envelope["id"]))
        statuses[label] = (await post(stack, prepared)).status_code
    accepted = {name: status for name, status in statuses.items() if status < 400}
    assert not accepted, accepted

    control = booking(coconut, advisor, start=START + timedelta(days=1))
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
    before = booking(coconut, advisor)
    assert await deliver(stack, before) == [202]
    await eventually(lambda: synced_events(stack.graph, advisor.mailbox))
    # The outage is for the webhook: let the worker's run finish and give its lease back first
    # (a run cut off by the outage keeps the staff member's lease until it expires).
    await eventually(lambda: store.run_finished(advisor.staff_id))

    during = booking(coconut, advisor, start=START + timedelta(days=2))
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
