"""Export under trouble: throttling, lost answers, a crashed worker, no-op revisions, mailboxes
that cannot be reached, and events changed in Outlook.

Outcomes are read back from the Graph emulator (mailboxes and per-mailbox request counters) and
from the service's tables on Azurite. A test that injects faults runs on a stack of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.payloads import StaffRef
from local.graph_emulator.faults import FaultRule
from local.graph_emulator.server import GraphEmulator
from local.graph_emulator.throttling import ThrottleLimits
from local.stack import LocalStack
from sync.names import STAFF_ITEMS_TABLE, STAFF_SYNC_QUEUE, STAFF_TABLE
from sync.storage.keys import table_key
from sync.work import StaffSyncRequest
from tests.integration.conftest import coconut_key, deliver, events_by_key, eventually, sender

pytestmark = pytest.mark.integration

TORONTO = ZoneInfo("America/Toronto")
# A week ahead, whenever the tests run: a past appointment is history a full pass leaves alone.
START = (datetime.now(TORONTO) + timedelta(days=7)).replace(
    hour=9, minute=0, second=0, microsecond=0
)
SERVICE = payloads.service("S-7", "Opening an account")
BRANCH = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")
NOTES = "Bring two pieces of ID."
WRITES = ("POST", "PATCH", "DELETE")
# The periodic cycle (the safety net, with tests of its own) fires once a year here, so that
# every sync in a test is one the test caused.
TIMER_OFF = "0 0 0 1 1 *"


def new_stack(log: Path, queue_lease: float = 600.0, staff_lease: int = 60) -> LocalStack:
    return LocalStack(
        host_log=log,
        queue_lease=queue_lease,
        staff_lease=staff_lease,
        timer_schedule=TIMER_OFF,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Shared by the tests that inject no faults (each uses staff members of its own)."""
    with new_stack(tmp_path_factory.mktemp("host") / "host.log") as running:
        yield running


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[LocalStack]:
    with new_stack(tmp_path / "host.log") as running:
        yield running


# --- people, bookings and where their outcomes land ---------------------------------------------


@dataclass(frozen=True)
class Advisor:
    """A staff member in Coconut and (unless `mailbox` is None) their Microsoft 365 user."""

    ref: StaffRef
    mailbox: str | None

    @property
    def staff_id(self) -> str:
        return self.ref["id"]

    @property
    def box(self) -> str:
        assert self.mailbox is not None, "this staff member has no mailbox"
        return self.mailbox


def new_advisor(
    stack: LocalStack, *, first_name: str = "Jane", mailbox: bool = True, denied: bool = False
) -> Advisor:
    """A staff member on Coconut's roster (the periodic cycle stops syncing anyone who is not),
    with a Microsoft 365 mailbox unless `mailbox` is False; `denied`: outside the app's scope."""
    tag = uuid.uuid4().hex[:8]
    ref = payloads.staff_member(f"U-{tag}", f"{first_name}.{tag}@bank.example", first_name, "Doe")
    stack.coconut.add_user(ref["id"], ref["email"], first_name, "Doe")
    if not mailbox:
        return Advisor(ref, None)
    user = stack.graph.state.add_user(
        f"{first_name}.{tag}@bank.onmicrosoft.com",
        mail=ref["email"],
        time_zone="Eastern Standard Time",
        access_denied=denied,
    )
    return Advisor(ref, user.id)


def new_coconut() -> Coconut:
    return Coconut(first_appointment_number=uuid.uuid4().int % 10**9)


def book(coconut: Coconut, staff: list[Advisor], hour: int = 0) -> dict[str, Any]:
    start = START + timedelta(hours=hour)
    return dict(
        coconut.book(
            staff=[advisor.ref for advisor in staff],
            start=start,
            end=start + timedelta(minutes=30),
            service=SERVICE,
            location=BRANCH,
            notes=NOTES,
        )
    )


def key(envelope: dict[str, Any]) -> str:
    return f"appointment:{envelope['data']['id']}"


@dataclass
class Bookings:
    """The appointments booked in a test and which calendars each belongs in."""

    envelopes: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, set[str]] = field(default_factory=dict)  # mailbox -> item keys

    def add(self, envelope: dict[str, Any], staff: list[Advisor]) -> None:
        self.envelopes.append(envelope)
        for advisor in staff:
            self.expected.setdefault(advisor.box, set()).add(key(envelope))


def graph_requests(graph: GraphEmulator, mailbox: str) -> dict[str, dict[str, int]]:
    """Requests that reached Graph for a mailbox: method -> status -> count."""
    with graph.state.lock:
        mailboxes = graph.state.counters.to_json()["mailboxes"]
        requests: dict[str, dict[str, int]] = mailboxes.get(mailbox, {}).get("requests", {})
        return requests


def graph_writes(graph: GraphEmulator, mailbox: str) -> dict[str, int]:
    """Write requests for a mailbox by method, whatever their answer."""
    requests = graph_requests(graph, mailbox)
    return {method: sum(requests.get(method, {}).values()) for method in WRITES}


def throttled_answers(graph: GraphEmulator, mailbox: str) -> int:
    return sum(statuses.get("429", 0) for statuses in graph_requests(graph, mailbox).values())


def events_everywhere(graph: GraphEmulator, item_key: str) -> list[str]:
    """The mailboxes holding an event for the item, once per event."""
    return [
        user.id
        for user in graph.state.users()
        for event in graph.events(user.id)
        if coconut_key(event) == item_key
    ]


class Tables:
    """The worker's tables on the stack's Azurite."""

    def __init__(self, stack: LocalStack) -> None:
        self._service = TableServiceClient.from_connection_string(stack.azurite.connection_string)

    def _partition(self, table: str, staff_id: str) -> list[dict[str, Any]]:
        client = self._service.get_table_client(table)
        try:
            query = client.query_entities(
                "PartitionKey eq @pk", parameters={"pk": table_key(staff_id)}
            )
            return [dict(entity) for entity in query]
        except ResourceNotFoundError:
            return []

    def staff_status(self, staff_id: str) -> dict[str, Any]:
        """The staff record once a worker has given it a status ({} until then)."""
        found = self._partition(STAFF_TABLE, staff_id)
        return found[0] if found and found[0].get("Status") else {}

    def run_finished(self, staff_id: str) -> bool:
        """A worker ran for the staff member and gave their lease back."""
        found = self._partition(STAFF_TABLE, staff_id)
        return bool(found) and bool(found[0].get("Status")) and not found[0].get("LeaseOwner")

    def settled(self, staff_id: str) -> bool:
        """Nothing left to do for the staff member: no row pending or with a create in flight."""
        rows = self._partition(STAFF_ITEMS_TABLE, staff_id)
        return bool(rows) and not any(r.get("Pending") or r.get("PendingCreate") for r in rows)

    def close(self) -> None:
        self._service.close()


@pytest.fixture
def tables(stack: LocalStack) -> Iterator[Tables]:
    reader = Tables(stack)
    yield reader
    reader.close()


def one_event_each(graph: GraphEmulator, bookings: Bookings) -> bool:
    """Every calendar holds exactly its items, once each (nothing missing, nothing doubled)."""
    for mailbox, keys in bookings.expected.items():
        found = events_by_key(graph, mailbox)
        if set(found) != keys or any(len(events) != 1 for events in found.values()):
            return False
    return True


async def converged(
    stack: LocalStack, staff: list[Advisor], bookings: Bookings, within: float
) -> None:
    """Every calendar exact while nothing is left to do (no pending row, no create in flight)."""
    tables = Tables(stack)
    try:
        await eventually(
            lambda: (
                all(tables.settled(a.staff_id) for a in staff)
                and one_event_each(stack.graph, bookings)
            ),
            within=within,
        )
    finally:
        tables.close()


def set_faults(graph: GraphEmulator, *rules: dict[str, Any], seed: int = 7) -> None:
    """Fault rules in the control API's JSON form, drawn from a seeded RNG."""
    graph.state.faults.configure([FaultRule.from_json(rule) for rule in rules], seed)


def clear_faults(graph: GraphEmulator) -> None:
    graph.state.faults.configure((), 0)


def limit_requests(graph: GraphEmulator, requests: int, window_seconds: float) -> None:
    """Outlook's per-mailbox request limit, made small (429 with Retry-After when reached)."""
    graph.state.throttle.configure(
        ThrottleLimits(requests_per_window=requests, window_seconds=window_seconds)
    )
    graph.state.throttle.reset()


def mailbox_paths(*advisors: Advisor) -> str:
    """A fault `pathPattern` matching only requests to these mailboxes."""
    return "^/users/(" + "|".join(a.box for a in advisors) + ")/"


# --- throttling ----------------------------------------------------------------------------------


async def test_429_storm_converges_to_one_event_per_appointment_and_staff(
    own_stack: LocalStack,
) -> None:
    stack = own_stack
    staff = [new_advisor(stack, first_name=name) for name in ("Jane", "Omar", "Lea")]
    coconut = new_coconut()
    bookings = Bookings()
    for number in range(20):
        # Every fifth appointment has two staff members.
        assigned = [staff[number % 3]] + ([staff[(number + 1) % 3]] if number % 5 == 0 else [])
        bookings.add(book(coconut, assigned, hour=number), assigned)
    # A third of all requests throttled, and each mailbox allowed only 6 requests per 2 s.
    set_faults(stack.graph, {"kind": "throttle", "rate": 0.33, "retryAfter": 1})
    limit_requests(stack.graph, requests=6, window_seconds=2)

    async with sender(stack) as coconut_side:
        deliveries = await coconut_side.deliver_concurrently(bookings.envelopes)
    assert [d.status for d in deliveries] == [202] * 20

    await converged(stack, staff, bookings, within=45)
    throttled = sum(throttled_answers(stack.graph, a.box) for a in staff)
    assert throttled >= len(staff), f"no storm happened ({throttled} answers were 429)"


async def test_a_backlog_is_paced_to_the_mailbox_limit_without_a_single_429(
    tmp_path: Path,
) -> None:
    # Graph's limit made small, and the service told it (as a deployment knows Graph's).
    paced = {"GRAPH_MAILBOX_REQUESTS_PER_WINDOW": "4", "GRAPH_MAILBOX_WINDOW_SECONDS": "2"}
    with LocalStack(
        host_log=tmp_path / "host.log", timer_schedule=TIMER_OFF, extra_settings=paced
    ) as stack:
        limit_requests(stack.graph, requests=4, window_seconds=2)
        jane = new_advisor(stack)
        coconut = new_coconut()
        bookings = Bookings()
        for hour in range(10):  # 10 creates and the first pass's reads: several windows' worth
            bookings.add(book(coconut, [jane], hour=hour), [jane])

        async with sender(stack) as coconut_side:
            deliveries = await coconut_side.deliver_concurrently(bookings.envelopes)
        assert [d.status for d in deliveries] == [202] * 10

        await converged(stack, [jane], bookings, within=30)
        assert throttled_answers(stack.graph, jane.box) == 0
        assert sum(graph_writes(stack.graph, jane.box).values()) == 10, "one POST per booking"


async def test_mailbox_throttled_for_long_does_not_hold_up_the_others(
    own_stack: LocalStack,
) -> None:
    stack = own_stack
    jane, omar = new_advisor(stack), new_advisor(stack, first_name="Omar")
    coconut = new_coconut()
    janes, omars = Bookings(), Bookings()
    for hour in range(3):
        janes.add(book(coconut, [jane], hour=hour), [jane])
        omars.add(book(coconut, [omar], hour=hour), [omar])
    # Longer than the worker waits inline: Jane's work goes back on the queue with that delay.
    set_faults(
        stack.graph,
        {"kind": "throttle", "rate": 1.0, "retryAfter": 8, "pathPattern": mailbox_paths(jane)},
    )

    assert await deliver(stack, *janes.envelopes, *omars.envelopes) == [202] * 6

    await eventually(lambda: one_event_each(stack.graph, omars), within=6)
    assert events_by_key(stack.graph, jane.box) == {}
    assert throttled_answers(stack.graph, jane.box) > 0
    assert throttled_answers(stack.graph, omar.box) == 0

    clear_faults(stack.graph)
    await converged(stack, [jane, omar], janes, within=25)
    assert one_event_each(stack.graph, omars)


# --- lost answers --------------------------------------------------------------------------------


async def test_lost_create_answers_leave_exactly_one_event_per_appointment(
    own_stack: LocalStack,
) -> None:
    stack = own_stack
    staff = [new_advisor(stack), new_advisor(stack, first_name="Omar")]
    coconut = new_coconut()
    bookings = Bookings()
    for number in range(6):
        assigned = [staff[number % 2]]
        bookings.add(book(coconut, assigned, hour=number), assigned)
    # The event is written, then the answer is lost: a 503, or the connection drops; twice each.
    creates = {"methods": ["POST"], "pathPattern": r"^/users/[^/]+/events$", "rate": 1.0}
    set_faults(
        stack.graph,
        {"kind": "lostResponse", "lostAs": "503", "times": 2, **creates},
        {"kind": "lostResponse", "lostAs": "drop", "times": 2, **creates},
    )

    assert await deliver(stack, *bookings.envelopes) == [202] * 6

    await converged(stack, staff, bookings, within=40)
    lost = {
        status: sum(
            graph_requests(stack.graph, a.box).get("POST", {}).get(status, 0) for a in staff
        )
        for status in ("503", "dropped")
    }
    assert lost == {"503": 2, "dropped": 2}, "four answers were lost, and only four"


async def test_an_event_edited_between_a_lost_create_answer_and_its_retry_is_written_back(
    own_stack: LocalStack,
) -> None:
    """The create is made but its answer lost; a person edits the new event before the retry,
    and the retry (same transaction id) is answered with the edited event. That answer is not
    the service's write: the edit is undone like any other Outlook edit (Coconut wins)."""
    stack = own_stack
    jane = new_advisor(stack)
    booking = book(new_coconut(), [jane])
    set_faults(
        stack.graph,
        {
            "kind": "lostResponse",
            "lostAs": "503",
            "times": 1,
            "retryAfter": 3,
            "methods": ["POST"],
            "pathPattern": r"^/users/[^/]+/events$",
        },
    )

    assert await deliver(stack, booking) == [202]
    await eventually(lambda: bool(events_by_key(stack.graph, jane.box)), within=15)
    [made] = events_by_key(stack.graph, jane.box)[key(booking)]
    stack.graph.update_event_as_person(jane.box, made["id"], {"subject": "Moved to lunch"})
    answered = graph_requests(stack.graph, jane.box).get("POST", {})
    assert answered == {"503": 1}, "the edit came before the create's retry"

    def written_back() -> bool:
        found = events_by_key(stack.graph, jane.box).get(key(booking), [])
        return [event["subject"] for event in found] == [SERVICE["name"]]

    await eventually(written_back, within=20)
    assert graph_requests(stack.graph, jane.box)["POST"] == {"503": 1, "201": 1}


# --- a crash -------------------------------------------------------------------------------------


SHORT_STAFF_LEASE = 6


@pytest.fixture
def short_lease_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """Messages a killed host held come back after 5 s instead of Azure's 10 minutes, and its
    staff leases run out after 6 s instead of a minute."""
    with new_stack(tmp_path / "host.log", queue_lease=5, staff_lease=SHORT_STAFF_LEASE) as running:
        yield running


async def test_worker_killed_mid_reconcile_converges_without_duplicates(
    short_lease_stack: LocalStack,
) -> None:
    stack = short_lease_stack
    staff = [new_advisor(stack), new_advisor(stack, first_name="Omar")]
    coconut = new_coconut()
    bookings = Bookings()
    for number in range(12):
        assigned = [staff[number % 2]]
        bookings.add(book(coconut, assigned, hour=number), assigned)
    # Slow creates, so that the kill lands while the calendars are half written.
    set_faults(
        stack.graph,
        {"kind": "latency", "latencySeconds": 0.6, "methods": ["POST"], "pathPattern": "/events$"},
    )

    assert await deliver(stack, *bookings.envelopes) == [202] * 12
    await eventually(lambda: any(events_by_key(stack.graph, a.box) for a in staff), within=15)
    stack.kill_host()
    written = sum(len(events_by_key(stack.graph, a.box)) for a in staff)
    assert 0 < written < 12, "the host was not killed mid-reconcile"

    clear_faults(stack.graph)
    stack.start_host()
    # The dead host's messages come back after the 5 s queue lease, but the staff leases it held
    # run out first: until then the new host defers their work (to the lease's end).
    await converged(stack, staff, bookings, within=SHORT_STAFF_LEASE + 20)


# --- no-op revisions -----------------------------------------------------------------------------


async def test_revision_that_changes_nothing_in_the_event_writes_nothing(
    stack: LocalStack, tables: Tables
) -> None:
    jane = new_advisor(stack)
    coconut = new_coconut()
    booked = book(coconut, [jane])
    appointment_id = booked["data"]["id"]
    assert await deliver(stack, booked) == [202]
    await eventually(lambda: tables.settled(jane.staff_id) and events_by_key(stack.graph, jane.box))
    before = graph_writes(stack.graph, jane.box)
    assert before == {"POST": 1, "PATCH": 0, "DELETE": 0}

    renamed = payloads.staff_member(jane.staff_id, jane.ref["email"], "Janet", "Doe")
    no_ops: list[dict[str, Any]] = [
        dict(coconut.reassign(appointment_id, [renamed])),  # only the staff member's first name
        dict(coconut.change_notes(appointment_id, NOTES)),  # the same content, revision + 1
    ]
    assert await deliver(stack, *no_ops) == [202, 202]
    await eventually(lambda: tables.settled(jane.staff_id))

    assert graph_writes(stack.graph, jane.box) == before

    later = START + timedelta(days=1)
    moved = dict(coconut.reschedule(appointment_id, later, later + timedelta(hours=1)))
    assert await deliver(stack, moved) == [202]
    await eventually(lambda: tables.settled(jane.staff_id))
    [event] = events_by_key(stack.graph, jane.box)[key(booked)]
    assert event["start"]["dateTime"].startswith(f"{later:%Y-%m-%d}"), "the change was written"
    assert graph_writes(stack.graph, jane.box) == {"POST": 1, "PATCH": 1, "DELETE": 0}


# --- mailboxes the service cannot use ------------------------------------------------------------


async def test_staff_member_without_a_microsoft_365_user_is_warned_and_colleagues_still_sync(
    stack: LocalStack, tables: Tables
) -> None:
    nobody = new_advisor(stack, first_name="Ghost", mailbox=False)
    omar = new_advisor(stack, first_name="Omar")
    booked = book(new_coconut(), [nobody, omar])

    assert await deliver(stack, booked) == [202]

    await eventually(lambda: events_by_key(stack.graph, omar.box))
    record = await eventually(lambda: tables.staff_status(nobody.staff_id))
    assert record["Status"] == "Warning"
    assert record["Reason"], "the warning says why"
    assert "@" not in record["Reason"], "no e-mail address in the reason"
    assert events_everywhere(stack.graph, key(booked)) == [omar.box]


async def test_mailbox_denying_access_is_an_error_and_colleagues_still_sync(
    stack: LocalStack, tables: Tables
) -> None:
    denied = new_advisor(stack, first_name="Dana", denied=True)
    omar = new_advisor(stack, first_name="Omar")
    booked = book(new_coconut(), [denied, omar])

    assert await deliver(stack, booked) == [202]

    await eventually(lambda: events_by_key(stack.graph, omar.box))
    record = await eventually(lambda: tables.staff_status(denied.staff_id))
    assert record["Status"] == "Error"
    assert "403" in record["Reason"]
    assert "@" not in record["Reason"]
    assert events_everywhere(stack.graph, key(booked)) == [omar.box]


# --- drift: Coconut wins -------------------------------------------------------------------------


def request_full_reconcile(stack: LocalStack, staff_id: str) -> None:
    """What an operator's resync does: a full `StaffSyncRequest` on the work queue."""
    queue = QueueClient.from_connection_string(
        stack.azurite.connection_string,
        STAFF_SYNC_QUEUE,
        message_encode_policy=BinaryBase64EncodePolicy(),
    )
    with queue:
        request = StaffSyncRequest(staff_id=staff_id, reason="ops", full=True)
        queue.send_message(request.model_dump_json().encode())


async def test_full_reconcile_reverts_outlook_edits_and_recreates_outlook_deletions(
    stack: LocalStack, tables: Tables
) -> None:
    jane = new_advisor(stack)
    coconut = new_coconut()
    edited, deleted = book(coconut, [jane], hour=0), book(coconut, [jane], hour=2)
    assert await deliver(stack, edited, deleted) == [202, 202]
    await eventually(lambda: len(events_by_key(stack.graph, jane.box)) == 2)
    # A full request meeting a held lease waits for the lease's end: ask once the run is over.
    await eventually(lambda: tables.settled(jane.staff_id) and tables.run_finished(jane.staff_id))
    [original] = events_by_key(stack.graph, jane.box)[key(edited)]
    [gone] = events_by_key(stack.graph, jane.box)[key(deleted)]

    stack.graph.update_event_as_person(jane.box, original["id"], {"subject": "Moved to lunch"})
    stack.graph.delete_event_as_person(jane.box, gone["id"])
    request_full_reconcile(stack, jane.staff_id)

    def repaired() -> bool:
        found = events_by_key(stack.graph, jane.box)
        return [e["subject"] for e in found.get(key(edited), [])] == [SERVICE["name"]] and len(
            found.get(key(deleted), [])
        ) == 1

    await eventually(repaired)
    found = events_by_key(stack.graph, jane.box)
    assert found[key(edited)][0]["id"] == original["id"], "the edited event is written back"
    assert found[key(deleted)][0]["id"] != gone["id"], "the deleted event is made anew"
