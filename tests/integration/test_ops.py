"""The ops HTTP API and the `python -m sync.ops` command line on the local stack.

Every command's outcome is read back from where it lands: the Graph emulator's mailboxes, the
Coconut emulator's external events, and the staff records and queues in Azurite.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient
from rich.console import Console

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.payloads import Envelope
from local.stack import LocalStack
from sync.graph.calendar import COCONUT_ID_PROPERTY
from sync.imports.busy_time import is_service_external_id
from sync.lease import HeldLease, LeaseHeld, StaffLease
from sync.names import STAFF_SYNC_POISON_QUEUE
from sync.ops import cli
from sync.ops.client import OpsClient, OpsRefused
from sync.staff_record import Roster, StaffChanges
from sync.storage.account import StorageAccount
from sync.storage.staff_table import TableStaffStore
from sync.work import STAFF_PER_MESSAGE, StaffSyncRequest, fan_out
from tests.integration.conftest import deliver, eventually, synced_events, when_free
from tests.integration.test_export import BRANCH, OPENING, new_coconut

pytestmark = pytest.mark.integration

SOON = (datetime.now(UTC) + timedelta(days=7)).replace(hour=15, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """With change notifications, so staff have a Graph subscription a disconnect must remove."""
    log = tmp_path_factory.mktemp("host") / "host.log"
    with LocalStack(notifications=True, host_log=log) as running:
        yield running


@pytest.fixture
async def storage(stack: LocalStack) -> AsyncIterator[StorageAccount]:
    connection = stack.azurite.connection_string
    account = StorageAccount(
        TableServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
        [],
    )
    # Tests write records before any function ran: make the tables as the app's first use does.
    await account.ensure_created()
    yield account
    await account.close()


class Person:
    """A staff member on Coconut's roster with a Microsoft 365 mailbox."""

    def __init__(self, stack: LocalStack) -> None:
        tag = uuid.uuid4().hex[:8]
        self.stack = stack
        self.staff_id = f"U-{tag}"
        self.email = f"kim.{tag}@bank.example"
        self.ref = payloads.staff_member(self.staff_id, self.email, "Kim", tag)
        self.mailbox = stack.graph.add_user(
            f"kim.{tag}@bank.onmicrosoft.com", mail=self.email, time_zone="UTC"
        ).id
        stack.coconut.add_user(self.staff_id, self.email, "Kim", tag, calendar_sync=True)
        self.bookings: list[Envelope] = []

    async def book(self, *others: Person, start: datetime = SOON) -> str:
        envelope = new_coconut().book(
            staff=[self.ref, *(o.ref for o in others)],
            start=start,
            end=start + timedelta(hours=1),
            service=OPENING,
            location=BRANCH,
        )
        assert await deliver(self.stack, envelope) == [202]
        self.bookings.append(envelope)
        return f"appointment:{envelope['data']['id']}"

    async def listed_again(self) -> None:
        """What Coconut's listing brings back on a reconnect (contracts/coconut-api.md): each
        appointment at its revision, which restores the content a disconnect purged."""
        assert set(await deliver(self.stack, *self.bookings)) == {202}

    def add_own(self, subject: str, start: datetime) -> str:
        return self.stack.graph.create_event_as_person(
            self.mailbox,
            {
                "subject": subject,
                "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {
                    "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC",
                },
                "showAs": "busy",
            },
        ).id

    def service_events(self) -> list[dict[str, Any]]:
        return synced_events(self.stack.graph, self.mailbox)

    def busy(self) -> dict[str, dict[str, Any]]:
        return self.stack.coconut.external_events(self.staff_id)

    def service_blocks(self) -> list[str]:
        return [key for key in self.busy() if is_service_external_id(key)]

    def subscriptions(self) -> list[str]:
        return [s.id for s in self.stack.graph.state.subscriptions() if s.mailbox == self.mailbox]


def row(ops: OpsClient, staff_id: str) -> dict[str, Any]:
    """The staff member's row of the staff list ({} while they have no record)."""
    return next((r for r in ops.staff()["staff"] if r["staff_id"] == staff_id), {})


async def synced(ops: OpsClient, person: Person) -> dict[str, Any]:
    """Book one appointment and import one own event; the staff member's row once both landed."""
    await person.book()
    await eventually(lambda: len(person.service_events()) == 1 and person.subscriptions())
    person.add_own("Dentist", SOON + timedelta(days=1))
    await eventually(lambda: len(person.service_blocks()) == 1)
    return await eventually(
        lambda: (r := row(ops, person.staff_id)).get("status") == "Syncing" and r
    )


def run_cli(stack: LocalStack, *argv: str) -> tuple[int, str]:
    assert stack.host is not None
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    code = cli.main(["--url", stack.host.base_url, *argv], console=console)
    return code, out.getvalue()


async def run_cli_async(stack: LocalStack, *argv: str) -> tuple[int, str]:
    # The command line is synchronous and may wait: keep the test's event loop free.
    return await asyncio.to_thread(run_cli, stack, *argv)


# ----- the HTTP API ------------------------------------------------------------------------------


async def test_staff_list_shows_status_counts_and_work_and_detail_names_the_mailbox(
    stack: LocalStack, ops: OpsClient
) -> None:
    kim = Person(stack)
    listed = await synced(ops, kim)
    assert listed["events"] == 1
    assert listed["pending"] == 0
    assert listed["reason"] == ""
    assert listed["last_sync_at"] is not None
    overview = ops.staff()
    assert overview["counts"]["Syncing"] >= 1
    assert sum(overview["counts"].values()) == overview["total"]
    assert kim.staff_id in {r["staff_id"] for r in ops.staff("syncing")["staff"]}
    assert kim.staff_id not in {r["staff_id"] for r in ops.staff("Error")["staff"]}

    detail = ops.detail(kim.staff_id)
    assert detail["user_id"] == kim.mailbox
    assert detail["email"] == kim.email
    assert detail["items"] == 1
    assert detail["pending_items"] == []
    assert detail["subscription_expires_at"] is not None
    assert detail["initialised_at"] is not None


async def test_staff_without_a_mailbox_show_a_warning_with_its_reason(
    stack: LocalStack, ops: OpsClient
) -> None:
    tag = uuid.uuid4().hex[:8]
    ref = payloads.staff_member(f"U-{tag}", f"nobody.{tag}@bank.example", "No", "Box")
    envelope = new_coconut().book(
        staff=[ref], start=SOON, end=SOON + timedelta(hours=1), service=OPENING, location=BRANCH
    )
    await deliver(stack, envelope)
    warned = await eventually(lambda: (r := row(ops, ref["id"])).get("status") == "Warning" and r)
    assert "no Microsoft 365 user" in warned["reason"]
    assert warned["pending"] == 1, "the appointment waits for a mailbox"


async def test_unknown_staff_bad_input_and_unknown_commands_get_clear_json_errors(
    ops: OpsClient,
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: ops.detail("U-nobody"),
        lambda: ops.command("U-nobody", "resync"),
        lambda: ops.command("U-nobody", "disconnect"),
    ]
    for call in calls:
        with pytest.raises(OpsRefused) as unknown:
            call()
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_staff")
        assert "U-nobody" in unknown.value.message
    with pytest.raises(OpsRefused) as bad_status:
        ops.staff("Sleeping")
    assert (bad_status.value.status, bad_status.value.code) == (400, "bad_input")
    assert "Syncing" in bad_status.value.message, "the message lists the statuses"
    with pytest.raises(OpsRefused) as command:
        ops.command("U-nobody", "explode")
    assert (command.value.status, command.value.code) == (404, "unknown_command")
    with pytest.raises(OpsRefused) as body:
        ops._call("POST", "/resync", json={"all": True, "staff_ids": ["x"]})
    assert (body.value.status, body.value.code) == (400, "bad_input")
    with pytest.raises(OpsRefused) as replay:
        ops._call("POST", "/poison/replay", json={"limit": 0})
    assert (replay.value.status, replay.value.code) == (400, "bad_input")
    assert "limit" in replay.value.message


async def test_resync_restores_busy_time_deleted_in_coconut_and_events_changed_in_outlook(
    stack: LocalStack, ops: OpsClient
) -> None:
    kim = Person(stack)
    await synced(ops, kim)
    [block] = kim.service_blocks()
    stack.coconut.state.delete_external_event(kim.staff_id, block)  # nothing notifies the sync
    before = row(ops, kim.staff_id)["status_at"]

    accepted = ops.command(kim.staff_id, "resync")
    assert accepted["command"] == "resync"
    await eventually(lambda: kim.service_blocks() == [block])
    await eventually(lambda: row(ops, kim.staff_id)["status_at"] > before)
    assert len(kim.service_events()) == 1, "nothing duplicated"


async def test_reinitialise_starts_the_import_window_afresh_without_losing_busy_time(
    stack: LocalStack, ops: OpsClient
) -> None:
    kim = Person(stack)
    await synced(ops, kim)
    first = ops.detail(kim.staff_id)["initialised_at"]

    accepted = await when_free(ops, kim.staff_id, "reinitialise")
    assert accepted["requested_at"] > first
    moved = await eventually(
        lambda: (
            (d := ops.detail(kim.staff_id))["initialised_at"] > first
            and d["last_import_at"] > accepted["requested_at"]
            and d
        )
    )
    assert moved["status"] == "Syncing"
    assert len(kim.service_blocks()) == 1


async def test_disconnect_removes_everything_the_service_made_then_reconnect_brings_it_back(
    stack: LocalStack, ops: OpsClient
) -> None:
    kim, lee = Person(stack), Person(stack)
    await synced(ops, kim)
    await kim.book(lee, start=SOON + timedelta(days=2))
    await eventually(lambda: len(kim.service_events()) == 2 and len(lee.service_events()) == 1)
    own = kim.add_own("Physio", SOON + timedelta(days=3))
    await eventually(lambda: len(kim.service_blocks()) == 2)
    # An event whose create answer was lost (no link row), and another system's block.
    stack.graph.create_event_as_person(
        kim.mailbox,
        {
            "subject": "Orphan",
            "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"},
            "singleValueExtendedProperties": [
                {"id": COCONUT_ID_PROPERTY, "value": "appointment:404404"}
            ],
        },
    )
    foreign = {
        "type": "external-events",
        "id": "crm-77",
        "attributes": {
            "title": "CRM",
            "start": "2030-01-02T10:00:00Z",
            "end": "2030-01-02T11:00:00Z",
        },
    }
    stack.coconut.put_external_event(kim.staff_id, foreign)
    assert len(kim.service_events()) == 3

    accepted = await when_free(ops, kim.staff_id, "disconnect")
    assert accepted["status"] == "Disconnecting"
    await eventually(lambda: ops.detail(kim.staff_id)["status"] == "Disconnected")
    assert kim.service_events() == []
    assert own in {e["id"] for e in stack.graph.events(kim.mailbox)}, "her own events stay"
    assert kim.service_blocks() == []
    assert list(kim.busy()) == ["crm-77"], "another system's external event stays"
    assert kim.subscriptions() == []
    assert len(lee.service_events()) == 1, "nobody else is touched"
    assert row(ops, kim.staff_id)["events"] == 0

    # No longer synced: a new booking reaches Lee, never Kim; a resync is refused.
    await kim.book(lee, start=SOON + timedelta(days=4))
    await eventually(lambda: len(lee.service_events()) == 2)
    await asyncio.sleep(1.0)  # a margin for a (wrong) sync of Kim's calendar to show
    assert kim.service_events() == []
    with pytest.raises(OpsRefused) as refused:
        ops.command(kim.staff_id, "resync")
    assert (refused.value.status, refused.value.code) == (409, "wrong_state")

    assert (await when_free(ops, kim.staff_id, "reconnect"))["status"] == "Pending"
    await kim.listed_again()
    await eventually(lambda: len(kim.service_events()) == 3)  # the three appointments
    await eventually(lambda: len(kim.service_blocks()) == 2)  # Dentist and Physio
    await eventually(lambda: row(ops, kim.staff_id)["status"] == "Syncing")
    await eventually(kim.subscriptions)
    with pytest.raises(OpsRefused) as again:
        (await when_free(ops, kim.staff_id, "reconnect"))
    assert (again.value.status, again.value.code) == (409, "wrong_state")


async def test_commands_that_change_a_leased_staff_member_answer_409_and_change_nothing(
    stack: LocalStack, ops: OpsClient, storage: StorageAccount
) -> None:
    kim = Person(stack)
    await synced(ops, kim)
    records = TableStaffStore(storage)
    lease = StaffLease(records, timedelta(seconds=60), owner="another-worker")

    async def take_lease() -> HeldLease | None:
        try:
            return await lease.acquire(kim.staff_id)
        except LeaseHeld:
            return None  # a real worker has it this instant

    for _ in range(50):
        if (held := await take_lease()) is not None:
            break
        await asyncio.sleep(0.1)
    assert held is not None
    try:
        assert row(ops, kim.staff_id)["leased_until"] is not None
        for command in ("disconnect", "reinitialise"):
            with pytest.raises(OpsRefused) as leased:
                ops.command(kim.staff_id, command)
            assert (leased.value.status, leased.value.code) == (409, "leased")
            assert "being synced" in leased.value.message
        record = await records.get(kim.staff_id)
        assert record is not None
        assert not record.connection.disconnected
        assert record.lease.owner == held.owner
        assert held.owner.startswith("another-worker")
    finally:
        await held.give_up(StaffChanges())
    released = await records.get(kim.staff_id)
    assert released is not None
    assert released.lease.owner == ""
    assert len(kim.service_events()) == 1


async def test_resync_of_the_tenant_refreshes_the_roster_and_syncs_staff_never_seen(
    stack: LocalStack, ops: OpsClient
) -> None:
    new = Person(stack)  # on Coconut's roster, no record yet: only the timer would find her
    new.add_own("Board meeting", SOON)
    with pytest.raises(OpsRefused):
        ops.detail(new.staff_id)

    answer = ops.resync()
    assert new.staff_id in answer["staff_ids"]
    assert answer["roster_size"] == len(stack.coconut.users())
    await eventually(lambda: len(new.service_blocks()) == 1)
    await eventually(lambda: ops.detail(new.staff_id)["status"] == "Syncing")


async def test_poison_messages_are_listed_and_replayed(
    stack: LocalStack, ops: OpsClient, storage: StorageAccount
) -> None:
    kim = Person(stack)
    kim.add_own("Training", SOON)
    await TableStaffStore(storage).merge(
        kim.staff_id, StaffChanges(roster=Roster(email=kim.email, calendar_sync=True))
    )
    poison = storage.queue(STAFF_SYNC_POISON_QUEUE)
    request = StaffSyncRequest(staff_id=kim.staff_id, reason="timer")
    await poison.send_message(request.model_dump_json().encode())
    await poison.send_message(b"not a request")

    listing = ops.poison()
    assert listing["length"] >= 2
    mine = [m for m in listing["messages"] if m["staff_id"] == kim.staff_id]
    assert [(m["reason"], m["action"]) for m in mine] == [("timer", "sync")]
    assert any(m["staff_id"] is None for m in listing["messages"]), "unreadable shown as such"

    outcome = ops.replay(kim.staff_id)
    assert outcome["replayed"] == 1
    assert outcome["staff_ids"] == [kim.staff_id]
    assert outcome["left"] >= 1
    await eventually(lambda: len(kim.service_blocks()) == 1)
    left = [m["staff_id"] for m in ops.poison()["messages"]]
    assert kim.staff_id not in left
    assert None in left, "an unreadable message is left for a person to look at"


async def test_a_poisoned_batch_is_listed_by_its_staff_and_replayed_for_each(
    stack: LocalStack, ops: OpsClient, storage: StorageAccount
) -> None:
    """A timer batch that failed every attempt (its put-backs could not be sent): an operator
    finds it by any staff member it names, and replaying it syncs every one of them."""
    kim, lee = Person(stack), Person(stack)
    for person in (kim, lee):
        person.add_own("Training", SOON)
        await TableStaffStore(storage).merge(
            person.staff_id, StaffChanges(roster=Roster(email=person.email, calendar_sync=True))
        )
    [batch] = fan_out([kim.staff_id, lee.staff_id], "timer", per_message=STAFF_PER_MESSAGE)
    await storage.queue(STAFF_SYNC_POISON_QUEUE).send_message(batch.model_dump_json().encode())

    listed = [m for m in ops.poison()["messages"] if lee.staff_id in m["staff_ids"]]
    assert [(sorted(m["staff_ids"]), m["reason"]) for m in listed] == [
        (sorted([kim.staff_id, lee.staff_id]), "timer")
    ]

    outcome = ops.replay(lee.staff_id)
    assert outcome["replayed"] == 1, "the batch goes back as one message"
    assert outcome["staff_ids"] == sorted([kim.staff_id, lee.staff_id])
    await eventually(lambda: len(kim.service_blocks()) == 1 and len(lee.service_blocks()) == 1)
    assert not [m for m in ops.poison()["messages"] if lee.staff_id in m["staff_ids"]]


# ----- the command line --------------------------------------------------------------------------


async def test_cli_status_and_show_print_readable_tables(stack: LocalStack, ops: OpsClient) -> None:
    kim = Person(stack)
    await synced(ops, kim)
    code, out = await run_cli_async(stack, "status")
    assert code == 0
    assert "Syncing" in out
    line = next(line for line in out.splitlines() if kim.staff_id in line)
    assert "Syncing" in line
    code, out = await run_cli_async(stack, "status", "--status", "Error")
    assert code == 0
    assert kim.staff_id not in out
    code, out = await run_cli_async(stack, "show", kim.staff_id)
    assert code == 0
    assert kim.mailbox in out
    code, out = await run_cli_async(stack, "--json", "show", kim.staff_id)
    assert code == 0
    assert f'"user_id": "{kim.mailbox}"' in out


async def test_cli_resync_follows_the_work_to_its_end(stack: LocalStack, ops: OpsClient) -> None:
    kim = Person(stack)
    await synced(ops, kim)
    [block] = kim.service_blocks()
    stack.coconut.state.delete_external_event(kim.staff_id, block)
    code, out = await run_cli_async(stack, "resync", kim.staff_id, "--wait", "30")
    assert code == 0, out
    assert "1/1" in out
    assert "After resync" in out
    assert kim.service_blocks() == [block], "restored by the time the command returns"


async def test_cli_backfill_syncs_every_staff_member_with_a_progress_bar(
    stack: LocalStack,
) -> None:
    fresh = [Person(stack) for _ in range(3)]
    for number, person in enumerate(fresh):
        person.add_own("Own", SOON + timedelta(days=number))
    code, out = await run_cli_async(stack, "backfill", "--wait", "60")
    assert code == 0, out
    assert "Full resync queued" in out
    assert "staff/s" in out
    for person in fresh:
        assert len(person.service_blocks()) == 1
        assert person.staff_id in out


async def test_cli_disconnect_reconnect_and_reinitialise(stack: LocalStack, ops: OpsClient) -> None:
    kim = Person(stack)
    await synced(ops, kim)
    code, out = await run_cli_async(stack, "disconnect", kim.staff_id, "--wait", "30")
    assert code == 0, out
    assert "Disconnected" in out
    assert kim.service_events() == []
    assert kim.service_blocks() == []
    code, out = await run_cli_async(stack, "reconnect", kim.staff_id, "--wait", "30")
    assert code == 0, out
    await kim.listed_again()
    await eventually(lambda: len(kim.service_events()) == 1)
    assert len(kim.service_blocks()) == 1
    before = ops.detail(kim.staff_id)["initialised_at"]
    code, out = await run_cli_async(stack, "reinitialise", kim.staff_id, "--wait", "30")
    assert code == 0, out
    assert ops.detail(kim.staff_id)["initialised_at"] > before


async def test_cli_poison_list_and_replay(
    stack: LocalStack, ops: OpsClient, storage: StorageAccount
) -> None:
    kim = Person(stack)
    kim.add_own("Workshop", SOON)
    await TableStaffStore(storage).merge(
        kim.staff_id, StaffChanges(roster=Roster(email=kim.email, calendar_sync=True))
    )
    request = StaffSyncRequest(staff_id=kim.staff_id, reason="webhook")
    await storage.queue(STAFF_SYNC_POISON_QUEUE).send_message(request.model_dump_json().encode())
    code, out = await run_cli_async(stack, "poison")
    assert code == 0
    assert kim.staff_id in out
    code, out = await run_cli_async(stack, "poison", "replay", "--staff", kim.staff_id)
    assert code == 0
    assert f"Replayed 1 message(s) for {kim.staff_id}" in out
    await eventually(lambda: len(kim.service_blocks()) == 1)


async def test_cli_reports_refusals_with_their_code(stack: LocalStack) -> None:
    code, out = await run_cli_async(stack, "show", "U-nobody")
    assert code == 1
    assert "404 unknown_staff" in out
    code, out = await run_cli_async(stack, "resync")
    assert code == 2
    assert "--all" in out
