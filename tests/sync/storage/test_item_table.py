"""The `items` table adapter on Azurite: content sealed at rest and bound to its row, a wrong key
refused with a reason, a rotation carried out by reads and finished by the ops command, rows of
the format before encryption taken over, and the retention's scans and removals."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local.azurite import Azurite
from sync.coconut.webhook_models import Appointment
from sync.content_cipher import ContentCipher, DataKey, new_data_key
from sync.desired_items import DesiredItemStore
from sync.desired_state import DesiredItem, decide, readable_part, without_content
from sync.errors import ContentUnreadable
from sync.names import ITEMS_TABLE
from sync.ops.data_key import DataKeyRotation
from sync.retention import ContentRetention
from sync.storage.account import StorageAccount
from sync.storage.item_links import TableItemLinks
from sync.storage.item_table import TableItemStore
from sync.storage.keys import table_key
from sync.storage.staff_table import TableStaffStore
from tests.sync.payloads import APPOINTMENT_RESOURCE, appointment_change, envelope

pytestmark = pytest.mark.integration

OLD = DataKey.from_setting(new_data_key())
NEW = DataKey.from_setting(new_data_key())
# What a customer told Coconut; none of it may be readable in the table.
PERSONAL = (
    "Sam",
    "Lee",
    "sam.lee@example.com",
    "416 555 0100",
    "416 555 0199",
    "Bring two pieces of ID",
    "Chequing",
    "Customer prefers French",
)


@pytest.fixture
async def account(azurite: Azurite) -> AsyncIterator[StorageAccount]:
    connection = azurite.connection_string
    storage = StorageAccount(
        TableServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
        [],
    )
    await storage.ensure_created()
    yield storage
    await storage.close()


def booking(revision: int = 1, **attributes: Any) -> tuple[str, Any]:
    """A delivery of an appointment no other test uses, and its item key."""
    data = copy.deepcopy(APPOINTMENT_RESOURCE)
    data["id"] = f"A-{uuid.uuid4().hex[:10]}"
    data["attributes"].update(revision=revision, **attributes)
    return f"appointment:{data['id']}", appointment_change(envelope("appointment.updated", data))


def record(revision: int = 1, **attributes: Any) -> DesiredItem:
    _, delivery = booking(revision, **attributes)
    item = decide(None, delivery).record
    assert item is not None
    return item.model_copy(update={"recorded_at": datetime.now(UTC)})


async def raw(account: StorageAccount, key: str) -> dict[str, Any]:
    return dict(await account.table(ITEMS_TABLE).get_entity(table_key(key), "state"))


def readable_forms(entity: dict[str, Any]) -> str:
    """Everything an operator can get out of an entity without a key: each value as text, as
    base64 decoded, and as zlib inflated."""
    found: list[str] = []
    for value in entity.values():
        data = value if isinstance(value, bytes) else str(value).encode()
        found.append(data.decode("utf-8", "replace"))
        with contextlib.suppress(ValueError):
            found.append(base64.b64decode(data).decode("utf-8", "replace"))
        with contextlib.suppress(zlib.error):
            found.append(zlib.decompress(data).decode("utf-8", "replace"))
    return "\n".join(found)


async def test_a_record_comes_back_as_written_and_is_unreadable_at_rest(
    account: StorageAccount,
) -> None:
    table = TableItemStore(account, ContentCipher(NEW))
    item = record()

    assert await table.swap(item, None)
    read, etag = await table.read(item.key)

    assert read == item
    assert etag is not None
    entity = await raw(account, item.key)
    assert (entity["Revision"], entity["Deleted"], entity["Purged"]) == (1, False, "")
    assert json.loads(entity["StaffIds"]) == ["U-42"]
    assert entity["EndsAt"] == item.ends_at
    assert entity["ContentKey"] == NEW.id
    text = readable_forms(entity)
    assert [value for value in PERSONAL if value in text] == []
    assert "jane.doe@bank.example" not in text, "staff e-mails are content too"


async def test_reading_without_content_decrypts_nothing(account: StorageAccount) -> None:
    item = record()
    await TableItemStore(account, ContentCipher(OLD)).swap(item, None)

    shell, etag = await TableItemStore(account, ContentCipher(NEW)).read(
        item.key, with_content=False
    )

    assert shell == readable_part(item)
    assert etag is not None


async def test_a_wrong_key_is_an_error_naming_the_item_and_a_newer_revision_heals_it(
    account: StorageAccount,
) -> None:
    key, first = booking(revision=1)
    links = TableItemLinks(account)
    await DesiredItemStore(TableItemStore(account, ContentCipher(OLD)), links).record(first)
    wrong = TableItemStore(account, ContentCipher(NEW))

    with pytest.raises(ContentUnreadable) as refused:
        await wrong.read(key)

    assert key in str(refused.value)
    assert OLD.id in str(refused.value)
    assert "SYNC_DATA_KEY_PREVIOUS" in str(refused.value)
    data = copy.deepcopy(APPOINTMENT_RESOURCE)
    data["id"] = first.appointment.id
    data["attributes"]["revision"] = 2
    second = appointment_change(envelope("appointment.updated", data))
    outcome = await DesiredItemStore(wrong, links).record(second)
    assert outcome.outcome == "accepted"
    healed, _ = await wrong.read(key)
    assert healed is not None
    assert healed.revision == 2


async def test_a_ciphertext_moved_to_another_row_or_an_edited_revision_does_not_open(
    account: StorageAccount,
) -> None:
    table = TableItemStore(account, ContentCipher(NEW))
    first, second = record(), record()
    await table.swap(first, None)
    await table.swap(second, None)
    client = account.table(ITEMS_TABLE)
    moved = await raw(account, second.key)
    source = await raw(account, first.key)
    for name in [n for n in source if n.startswith("Content")]:
        moved[name] = source[name]
    await client.upsert_entity(moved)

    with pytest.raises(ContentUnreadable, match="does not authenticate"):
        await table.read(second.key)

    edited = await raw(account, first.key)
    edited["Revision"] = 7
    await client.upsert_entity(edited)
    with pytest.raises(ContentUnreadable):
        await table.read(first.key)


async def test_during_a_rotation_old_rows_stay_readable_and_a_read_reseals_them(
    account: StorageAccount,
) -> None:
    item = record()
    await TableItemStore(account, ContentCipher(OLD)).swap(item, None)
    rotating = TableItemStore(account, ContentCipher(NEW, previous=OLD))

    read, etag = await rotating.read(item.key)

    assert read == item
    assert (await raw(account, item.key))["ContentKey"] == NEW.id
    assert etag is not None
    changed = item.model_copy(update={"revision": 2})
    assert await rotating.swap(changed, etag), "the ETag handed back is the current one"
    after, _ = await TableItemStore(account, ContentCipher(NEW)).read(item.key)
    assert after == changed, "the new key alone opens it now"


async def test_the_ops_command_finishes_a_rotation(account: StorageAccount) -> None:
    # The rotation covers the whole table: rows other tests sealed under keys of their own
    # would be unreadable here, so the table starts empty.
    items_table = account.table(ITEMS_TABLE)
    async for entity in items_table.list_entities(select=["PartitionKey", "RowKey"]):
        await items_table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    old_table = TableItemStore(account, ContentCipher(OLD))
    items = [record() for _ in range(5)]
    for item in items:
        await old_table.swap(item, None)
    rotating = TableItemStore(account, ContentCipher(NEW, previous=OLD))

    report = await DataKeyRotation(rotating, NEW.id).finish()

    assert report.complete
    assert (report.key_id, report.remaining, report.unreadable) == (NEW.id, 0, [])
    assert report.resealed >= len(items)
    new_only = TableItemStore(account, ContentCipher(NEW))
    for item in items:
        assert (await new_only.read(item.key))[0] == item
    again = await DataKeyRotation(rotating, NEW.id).finish()
    assert (again.complete, again.resealed) == (True, 0)


async def test_a_rotation_names_the_rows_neither_key_opens(account: StorageAccount) -> None:
    lost = DataKey.from_setting(new_data_key())
    item = record()
    await TableItemStore(account, ContentCipher(lost)).swap(item, None)
    rotating = TableItemStore(account, ContentCipher(NEW, previous=OLD))

    report = await DataKeyRotation(rotating, NEW.id).finish()

    assert not report.complete
    assert item.key in report.unreadable
    assert report.remaining >= 1


async def test_a_row_from_before_encryption_is_read_trimmed_and_sealed(
    account: StorageAccount,
) -> None:
    key, delivery = booking()
    old_record = DesiredItem(
        kind="appointment",
        coconut_id=delivery.appointment.id,
        revision=1,
        deleted=False,
        resource=delivery.appointment,  # everything, landline included
        staff_ids=frozenset({"U-42"}),
        staff_emails={"U-42": "jane.doe@bank.example"},
    )
    packed = zlib.compress(old_record.model_dump_json().encode())
    await account.table(ITEMS_TABLE).create_entity(
        {
            "PartitionKey": table_key(key),
            "RowKey": "state",
            "Kind": "appointment",
            "Revision": 1,
            "Deleted": False,
            "Chunks": 1,
            "Record0": packed,
        }
    )
    table = TableItemStore(account, ContentCipher(NEW))
    assert [s.stale_key for s in await table.scan() if s.item.key == key] == [True]

    shell, _ = await table.read(key, with_content=False)
    assert shell is not None
    assert shell.staff_ids == {"U-42"}, "decisions still reach the staff"
    read, _ = await table.read(key)

    assert read is not None
    assert isinstance(read.resource, Appointment)
    assert read.ends_at == delivery.appointment.end
    assert all(a.phone is None for a in read.resource.attendees or ())
    entity = await raw(account, key)
    assert entity["ContentKey"] == NEW.id
    assert "Record0" not in entity
    assert "555 0199" not in readable_forms(entity)


async def test_a_large_record_spans_several_columns(account: StorageAccount) -> None:
    attendee = APPOINTMENT_RESOURCE["attributes"]["attendees"][0]
    # Notes that do not compress: the record stays larger than one column.
    many = [
        {**attendee, "id": f"C-{n}", "notes": base64.b64encode(os.urandom(15_000)).decode()}
        for n in range(1, 11)
    ]
    item = record(attendees=many)
    table = TableItemStore(account, ContentCipher(NEW))

    assert await table.swap(item, None)

    assert (await raw(account, item.key))["ContentChunks"] > 1
    assert (await table.read(item.key))[0] == item


async def test_scans_find_what_ended_or_was_deleted_before_a_bound(
    account: StorageAccount,
) -> None:
    table = TableItemStore(account, ContentCipher(NEW))
    ended = record()  # ends 2026-12-01
    future = record(start="2030-01-01T10:00:00Z", end="2030-01-01T11:00:00Z")
    deletion = readable_part(record()).model_copy(
        update={"deleted": True, "ends_at": None, "recorded_at": datetime(2026, 1, 1, tzinfo=UTC)}
    )
    for item in (ended, future, deletion):
        await table.swap(item, None)
    bound = datetime(2027, 1, 1, tzinfo=UTC)

    found = {s.item.key: s for s in await table.scan(ended_before=bound, deleted_before=bound)}

    assert ended.key in found
    assert deletion.key in found
    assert future.key not in found
    assert found[ended.key].has_content
    assert not found[deletion.key].has_content
    assert found[ended.key].item.resource is None, "a scan decrypts nothing"
    assert deletion.key not in {s.item.key for s in await table.scan(ended_before=bound)}


async def test_retention_on_the_table_purges_content_and_removes_tombstones(
    account: StorageAccount,
) -> None:
    table = TableItemStore(account, ContentCipher(NEW))
    links, staff = TableItemLinks(account), TableStaffStore(account)
    item = record()
    await table.swap(item, None)
    retention = ContentRetention(table, links, staff, timedelta(days=30))
    assert item.ends_at is not None
    after_retention = item.ends_at + timedelta(days=30, seconds=1)

    await retention.run(after_retention)

    entity = await raw(account, item.key)
    assert (entity["Purged"], entity["ContentChunks"], entity["ContentKey"]) == ("retention", 0, "")
    assert not [name for name in entity if name.startswith("Content") and name[7:].isdigit()]
    purged, _ = await table.read(item.key)
    assert purged == without_content(item, "retention")

    await retention.run(max(after_retention, datetime.now(UTC)) + timedelta(days=8))
    assert (await table.read(item.key)) == (None, None)


async def test_a_removal_against_an_old_etag_is_refused(account: StorageAccount) -> None:
    table = TableItemStore(account, ContentCipher(NEW))
    item = record()
    await table.swap(item, None)
    _, etag = await table.read(item.key)
    assert etag is not None
    await table.swap(item.model_copy(update={"revision": 2}), etag)

    assert not await table.remove(item.key, etag)
    _, current = await table.read(item.key)
    assert current is not None
    assert await table.remove(item.key, current)
    assert await table.remove(item.key, current), "already gone counts as removed"
