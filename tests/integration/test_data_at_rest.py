"""Customer data at rest, read back as anyone with data access to the storage account would.

A realistic scenario runs on the local stack: bookings with attendees (names, e-mails, mobile
and landline phones, notes, answers), changes, a second attendee, a multi-staff appointment, a
cancellation, a deletion, an absence, an appointment that ended long ago, a disconnect and a
reconnect, a full resync. Afterwards every entity of every table (`items` included) and every
message of every queue (poison included) is read with the storage account's data access alone,
no data key, and searched for each of those values: as text, base64-decoded, and inflated as
zlib, gzip or raw deflate (each value on its own, and an entity's binary columns joined). None
may be found. The probe is shown to be live: every value reaches the Exchange event, and the
`items` content opened with the stack's key holds them.

Then, on the same stack: the timer's retention purges an ended item's content and a redelivery
cannot bring it back; start-up refuses a missing or malformed key naming the setting; and a key
rotation end to end (a wrong key is the staff member's Error with a reason, the previous key
keeps old rows readable, the ops command finishes the rotation).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import re
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local.azurite import REPO_ROOT
from local.coconut_emulator.webhooks import payloads
from local.stack import LocalStack
from sync.content_cipher import ContentCipher, DataKey, new_data_key
from sync.names import ITEMS_TABLE, QUEUES
from sync.ops.client import OpsClient
from sync.storage.account import StorageAccount
from sync.storage.item_table import TableItemStore
from sync.storage.keys import table_key
from tests.integration.conftest import deliver, eventually, when_free
from tests.integration.test_export import BRANCH, OPENING, new_coconut
from tests.integration.test_ops import SOON, Person, row, run_cli_async

pytestmark = pytest.mark.integration

XANTHIPPE = payloads.attendee(
    "C-881",
    "Xanthippe",
    "Quorblewick",
    email="xanthippe.quorblewick@probe-mail.example",
    cell_phone="+1 416 555 0143",
    phone="+1 416 555 0144",
    notes="Allergic to marzipan",
    answers=[payloads.answer("Name of your first pet?", "Hufflewhistle")],
)
XANTHIPPE_LATER = payloads.Attendee(**{**XANTHIPPE, "notes": "Moved to Glimmerford"})
TOBIAS = payloads.attendee(
    "C-882",
    "Tobias",
    "Vranckenheim",
    email="t.vranckenheim@probe-mail.example",
    cell_phone="+1 647 555 0155",
    phone="+1 647 555 0156",
    notes="Needs a Zanzibarian interpreter",
)
ORSOLYA = payloads.attendee(
    "C-883",
    "Orsolya",
    "Pimpernickel",
    email="orsolya@probe-mail.example",
    cell_phone="+1 905 555 0167",
    answers=[payloads.answer("Income bracket?", "Brackenfield tier")],
)
OLD_CUSTOMER = payloads.attendee(
    "C-884", "Wilhelmina", "Snorfbottom", email="w.snorfbottom@probe-mail.example"
)
NOTES = "Discuss the Fennimore estate"
LATER_NOTES = "Bring the Quillington deed"
ABSENCE_TITLE = "Trapezium clinic visit"

PERSONAL = (
    "Xanthippe",
    "Quorblewick",
    "xanthippe.quorblewick@probe-mail.example",
    "555 0143",
    "555 0144",
    "marzipan",
    "Hufflewhistle",
    "Glimmerford",
    "Tobias",
    "Vranckenheim",
    "t.vranckenheim@probe-mail.example",
    "555 0155",
    "555 0156",
    "Zanzibarian",
    "Orsolya",
    "Pimpernickel",
    "orsolya@probe-mail.example",
    "555 0167",
    "Brackenfield",
    "Wilhelmina",
    "Snorfbottom",
    "w.snorfbottom@probe-mail.example",
    "Fennimore",
    "Quillington",
    "Trapezium",
)
# Never written anywhere, not even to Exchange: only the mobile number is shown.
LANDLINES = ("555 0144", "555 0156")
# Retention of one day, and a timer every few seconds, so the timer's retention is seen at work.
RETENTION_DAYS = 1


async def post(stack: LocalStack, *envelopes: payloads.Envelope) -> list[int | None]:
    """Deliver as Coconut does (signed, retried on anything but 2xx)."""
    return await deliver(stack, *(dict(envelope) for envelope in envelopes))


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def leaks(text: str) -> set[str]:
    folded, bare = text.casefold(), digits(text)
    found = {value for value in PERSONAL if value.casefold() in folded}
    return found | {v for v in PERSONAL if v.startswith("555") and digits(v) in bare}


def _decodings(data: bytes) -> Iterator[bytes]:
    """`data` and what it may hide: base64 (standard and URL-safe), then zlib, gzip or raw
    deflate of either."""
    layers = [data]
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        with contextlib.suppress(binascii.Error, ValueError):
            layers.append(decode(data + b"=" * (-len(data) % 4)))
    for layer in layers:
        yield layer
        for wbits in (15, 31, -15):
            with contextlib.suppress(zlib.error):
                yield zlib.decompressobj(wbits).decompress(layer)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value).encode("utf-8")


def _column_order(name: str) -> tuple[str, int]:
    match = re.fullmatch(r"(\D*)(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


def exposed(entity: dict[str, Any]) -> str:
    """Everything an operator can read from an entity or message without a key."""
    values = [_as_bytes(value) for value in entity.values()]
    binary = [entity[n] for n in sorted(entity, key=_column_order) if isinstance(entity[n], bytes)]
    if binary:
        values.append(b"".join(binary))  # a record split across columns
    return "\n".join(
        layer.decode("utf-8", "replace") for value in values for layer in _decodings(value)
    )


async def storage_as_an_operator(
    tables: TableServiceClient, queues: QueueServiceClient
) -> dict[str, list[str]]:
    """Every entity of every table and every message of every queue, as exposed text."""
    found: dict[str, list[str]] = {}
    async for table in tables.list_tables():
        client = tables.get_table_client(table.name)
        found[f"table {table.name}"] = [
            exposed(dict(entity)) async for entity in client.list_entities()
        ]
    for name in QUEUES:
        queue = queues.get_queue_client(name)
        with contextlib.suppress(Exception):
            messages = await queue.peek_messages(max_messages=32)
            found[f"queue {name}"] = [exposed({"content": m.content}) for m in messages]
    return found


def test_the_search_sees_through_base64_and_compression() -> None:
    packed = zlib.compress(b'{"first_name": "Xanthippe", "phone": "+1 416 555 0144"}')
    gzipped = zlib.compressobj(wbits=31)
    hidden: dict[str, dict[str, Any]] = {
        "plain": {"Note": "call Tobias"},
        "base64": {"Note": base64.b64encode(b"Orsolya").decode()},
        "zlib": {"Record0": packed},
        "split": {"Record0": packed[:10], "Record1": packed[10:]},
        "base64 zlib": {"Record": base64.b64encode(packed).decode()},
        "gzip": {"Record": gzipped.compress(b"Snorfbottom") + gzipped.flush()},
    }

    unseen = [name for name, entity in hidden.items() if not leaks(exposed(entity))]
    assert unseen == []
    assert leaks(exposed({"Record0": packed})) == {"Xanthippe", "555 0144"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("host") / "host.log"
    with LocalStack(
        host_log=log,
        timer_schedule="*/3 * * * * *",
        extra_settings={"SYNC_CONTENT_RETENTION_DAYS": str(RETENTION_DAYS)},
    ) as running:
        yield running


@pytest.fixture
async def account(stack: LocalStack) -> AsyncIterator[StorageAccount]:
    connection = stack.azurite.connection_string
    storage = StorageAccount(
        TableServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
        [],
    )
    yield storage
    await storage.close()


async def item_row(account: StorageAccount, key: str) -> dict[str, Any] | None:
    with contextlib.suppress(Exception):
        return dict(await account.table(ITEMS_TABLE).get_entity(table_key(key), "state"))
    return None


def event_text(person: Person) -> str:
    return json.dumps(person.service_events())


async def test_storage_holds_no_customer_data_in_any_readable_form(
    stack: LocalStack,
    ops: OpsClient,
    clients: tuple[TableServiceClient, QueueServiceClient],
    account: StorageAccount,
) -> None:
    kim, lee = Person(stack), Person(stack)
    coconut = new_coconut()

    first = coconut.book(
        staff=[kim.ref],
        start=SOON,
        end=SOON + timedelta(hours=1),
        service=OPENING,
        location=BRANCH,
        attendees=[XANTHIPPE],
        notes=NOTES,
    )
    shared = coconut.book(
        staff=[kim.ref, lee.ref],
        start=SOON + timedelta(days=1),
        end=SOON + timedelta(days=1, hours=1),
        service=OPENING,
        location=BRANCH,
        attendees=[ORSOLYA],
    )
    doomed = coconut.book(
        staff=[kim.ref],
        start=SOON + timedelta(days=2),
        end=SOON + timedelta(days=2, hours=1),
        service=OPENING,
        attendees=[TOBIAS],
        meeting_method=payloads.PHONE_CALL,
    )
    absence = coconut.record_absence(
        staff=lee.ref,
        start=SOON + timedelta(days=3),
        end=SOON + timedelta(days=4),
        title=ABSENCE_TITLE,
    )
    one, two, three = (e["data"]["id"] for e in (first, shared, doomed))
    await post(stack, first, shared, doomed, absence)
    await post(
        stack,
        coconut.add_attendee(one, TOBIAS),
        coconut.update_attendee(one, XANTHIPPE_LATER),
        coconut.change_notes(one, LATER_NOTES),
    )
    await eventually(lambda: "Quillington" in event_text(kim) and "Glimmerford" in event_text(kim))
    shown = leaks(event_text(kim) + event_text(lee))
    elsewhere = {"Wilhelmina", "Snorfbottom", "w.snorfbottom@probe-mail.example"}  # next test
    replaced = {"marzipan", "Fennimore"}  # notes changed since
    assert set(PERSONAL) - set(LANDLINES) - elsewhere - replaced - shown == set(), (
        "every probe value reaches the events themselves"
    )
    assert not set(LANDLINES) & shown, "only the mobile number is written"

    await post(stack, coconut.cancel(two), coconut.delete(three))
    await eventually(lambda: len(kim.service_events()) == 1)

    await when_free(ops, lee.staff_id, "disconnect")
    await eventually(lambda: ops.detail(lee.staff_id)["status"] == "Disconnected")
    await when_free(ops, lee.staff_id, "reconnect")
    await post(stack, absence)  # what Coconut's listing brings back on a reconnect
    await eventually(lambda: row(ops, lee.staff_id).get("status") == "Syncing")
    await eventually(lambda: len(lee.service_events()) == 1)
    await when_free(ops, kim.staff_id, "resync")
    await eventually(lambda: row(ops, kim.staff_id).get("status") == "Syncing")

    tables, queues = clients
    stored = await storage_as_an_operator(tables, queues)
    assert f"table {ITEMS_TABLE}" in stored
    assert {"table staff", "table staffitems"} <= set(stored)
    found = {
        f"{place} #{n}": values
        for place, entities in stored.items()
        for n, text in enumerate(entities)
        if (values := leaks(text))
    }
    assert found == {}

    # The search would have found them: the content is there, sealed under the stack's key.
    keyed = TableItemStore(account, ContentCipher(DataKey.from_setting(stack.data_key)))
    item, _ = await keyed.read(f"appointment:{one}")
    assert item is not None
    opened = item.model_dump_json()
    assert {"Xanthippe", "Glimmerford", "Tobias", "Quillington"} <= leaks(opened)
    assert not set(LANDLINES) & leaks(opened), "the landline is not even kept"


async def test_the_timer_purges_ended_content_and_a_redelivery_cannot_bring_it_back(
    stack: LocalStack, account: StorageAccount
) -> None:
    kim = Person(stack)
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(days=RETENTION_DAYS + 2)
    booking = new_coconut().book(
        staff=[kim.ref],
        start=ended - timedelta(hours=1),
        end=ended,
        service=OPENING,
        location=BRANCH,
        attendees=[OLD_CUSTOMER],
    )
    key = f"appointment:{booking['data']['id']}"
    await post(stack, booking)

    async def purged() -> dict[str, Any] | None:
        entity = await item_row(account, key)
        return entity if entity is not None and entity.get("Purged") == "retention" else None

    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while (entity := await purged()) is None:
        assert datetime.now(UTC) < deadline, "the timer's retention did not run"
        await asyncio.sleep(0.3)
    assert entity["ContentChunks"] == 0
    assert "Content0" not in entity
    assert entity["Revision"] == 1
    events_before = len(kim.service_events())

    assert await post(stack, booking) == [202]  # Coconut retries the same delivery
    await asyncio.sleep(2)

    again = await item_row(account, key)
    assert again is not None
    assert (again["Purged"], again["ContentChunks"]) == ("retention", 0)
    assert len(kim.service_events()) == events_before, "its event, if written, stays"


@pytest.mark.parametrize("value", ["", "not a key", base64.b64encode(bytes(16)).decode()])
def test_start_up_without_a_valid_data_key_names_the_setting(
    stack: LocalStack, tmp_path: Path, value: str
) -> None:
    env = {
        **os.environ,
        **stack.settings(0),
        "SYNC_DATA_KEY": value,
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "local.host", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SYNC_DATA_KEY" in lines[0]
    assert not value or value not in lines[0]


def restart_host(stack: LocalStack, key: str, previous: str | None = None) -> None:
    assert stack.host is not None
    stack.host.stop()
    stack.data_key = key
    stack.extra_settings.pop("SYNC_DATA_KEY_PREVIOUS", None)
    if previous is not None:
        stack.extra_settings["SYNC_DATA_KEY_PREVIOUS"] = previous
    stack.start_host()


async def test_a_key_rotation_end_to_end(
    stack: LocalStack, ops: OpsClient, account: StorageAccount
) -> None:
    """Last in this module: it restarts the host under other keys."""
    kim = Person(stack)
    booking = await kim.book()
    await eventually(lambda: len(kim.service_events()) == 1)
    old, new = stack.data_key, new_data_key()

    # A new key without the old one: the old rows cannot be read, and the status says why.
    restart_host(stack, new)
    await when_free(ops, kim.staff_id, "resync")
    await eventually(lambda: row(ops, kim.staff_id).get("status") == "Error")
    reason = str(row(ops, kim.staff_id)["reason"])
    assert booking in reason
    assert "SYNC_DATA_KEY" in reason
    assert ops.poison()["length"] == 0, "an Error status, not a crash"

    # The old key as the previous one: everything reads again, and what is read is re-sealed.
    restart_host(stack, new, previous=old)
    await when_free(ops, kim.staff_id, "resync")
    await eventually(lambda: row(ops, kim.staff_id).get("status") == "Syncing")
    code, out = await run_cli_async(stack, "rotate-data-key")
    assert code == 0, out
    assert "rotation complete" in out
    new_id = DataKey.from_setting(new).id
    async for entity in account.table(ITEMS_TABLE).list_entities():
        assert entity.get("ContentKey") in ("", new_id), entity["PartitionKey"]

    # The rotation is finished: the new key alone is enough.
    restart_host(stack, new)
    await when_free(ops, kim.staff_id, "resync")
    await eventually(lambda: row(ops, kim.staff_id).get("status") == "Syncing")
    assert len(kim.service_events()) == 1
