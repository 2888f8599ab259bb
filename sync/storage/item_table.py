"""The `items` table (`sync.ports.ItemTable`): the desired state of each Coconut item.

Writes are compare-and-swap on the entity's ETag (create-if-absent, replace-if-unchanged), so two
deliveries racing for one appointment can never let the lower revision win
(`sync.desired_items`).

One entity per item (PartitionKey = item key, RowKey "state"). What an operator with data access
to the storage account sees (docs/data-map.md):

| column                          | holds                                                   |
| ------------------------------- | ------------------------------------------------------- |
| `Kind`, `CoconutId`, `Revision` | what the item is and which revision is recorded         |
| `Deleted`, `Purged`             | deleted in Coconut; content purged ("retention",        |
|                                 | "disconnect") or kept ("")                              |
| `StaffIds`, `PreviousStaffIds`, | Coconut staff ids (JSON arrays); `WithdrawnStaffIds`:   |
| `WithdrawnStaffIds`             | staff a complete listing no longer showed it for        |
| `EndsAt`, `RecordedAt`          | when the item ends; when this revision was recorded     |
| `ContentKey`                    | id of the data key the content is sealed under          |
| `ContentChunks`, `Content0..n`  | the content: AES-256-GCM ciphertext, split in 60 KiB    |
|                                 | binary columns (Table Storage's limit per property)     |
| `Format`                        | 2                                                       |

The content is the JSON of the kept resource and the staff e-mails (`sync.kept_content`),
zlib-compressed, then sealed by `sync.content_cipher` with associated data naming the item key
and the revision: a ciphertext moved to another row, or left under an edited revision, does not
open. Compression comes first because records can be large; what a row's size reveals is roughly
how much text the appointment holds.

Rotation: content is sealed under `SYNC_DATA_KEY` on every write; a read that finds content
sealed under the previous key (or a row of the format before encryption, which it also trims to
what is kept) writes it back under the current key, unless someone wrote the row meanwhile. The
ops command `rotate-data-key` reads every such row (`sync.ops.data_key`).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from sync.content_cipher import CannotOpen, ContentCipher
from sync.desired_state import DesiredItem, readable_part
from sync.errors import ContentUnreadable, RecordTooLarge, StorageUnavailable
from sync.kept_content import kept_for_event
from sync.names import ITEMS_TABLE
from sync.ports import StoredItem
from sync.storage.account import StorageAccount, guarded
from sync.storage.keys import from_table_key, table_key

ROW: Final = "state"
FORMAT: Final = 2
# Table Storage caps a binary property at 64 KiB and an entity at 1 MiB: the sealed content is
# split across properties of this size.
CHUNK: Final = 60 * 1024
MAX_CHUNKS: Final = 15
# The readable columns housekeeping reads (`scan`): no content is fetched.
_READABLE: Final = [
    "PartitionKey",
    "Kind",
    "CoconutId",
    "Revision",
    "Deleted",
    "Purged",
    "StaffIds",
    "PreviousStaffIds",
    "WithdrawnStaffIds",
    "EndsAt",
    "RecordedAt",
    "ContentKey",
    "ContentChunks",
    "Format",
    "Chunks",
    "Timestamp",
]
_CONTENT_FIELDS: Final = {"resource", "staff_emails"}


def content_binding(key: str, revision: int) -> bytes:
    """Associated data of an item's sealed content: the row it belongs to, at its revision."""
    return f"items/{key}/revision/{revision}".encode()


def _ids(values: frozenset[str]) -> str:
    return json.dumps(sorted(values))


def _readable_columns(item: DesiredItem) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": table_key(item.key),
        "RowKey": ROW,
        "Format": FORMAT,
        "Kind": item.kind,
        "CoconutId": item.coconut_id,
        "Revision": item.revision,
        "Deleted": item.deleted,
        "Purged": item.purged or "",
        "StaffIds": _ids(item.staff_ids),
        "PreviousStaffIds": _ids(item.previous_staff_ids),
        "WithdrawnStaffIds": _ids(item.withdrawn_staff),
        "ContentKey": "",
        "ContentChunks": 0,
    }
    if item.ends_at is not None:
        entity["EndsAt"] = item.ends_at
    if item.recorded_at is not None:
        entity["RecordedAt"] = item.recorded_at
    return entity


def _encode(item: DesiredItem, cipher: ContentCipher) -> dict[str, Any]:
    entity = _readable_columns(item)
    if not item.has_content:
        return entity
    content = item.model_dump_json(include=_CONTENT_FIELDS).encode()
    key_id, sealed = cipher.seal(
        zlib.compress(content, level=6), bound_to=content_binding(item.key, item.revision)
    )
    chunks = [sealed[i : i + CHUNK] for i in range(0, len(sealed), CHUNK)]
    if len(chunks) > MAX_CHUNKS:
        raise RecordTooLarge(f"record of {item.key} is {len(sealed)} bytes sealed")
    entity["ContentKey"] = key_id
    entity["ContentChunks"] = len(chunks)
    for index, chunk in enumerate(chunks):
        entity[f"Content{index}"] = chunk
    return entity


def _is_legacy(entity: dict[str, Any]) -> bool:
    """A row of the format before encryption: the whole record zlib-compressed, in clear."""
    return entity.get("Format") is None and entity.get("Chunks") is not None


def _readable(entity: dict[str, Any]) -> DesiredItem:
    """The record from its readable columns (content left out)."""
    key = from_table_key(str(entity["PartitionKey"]))
    kind, _, coconut_id = key.partition(":")
    recorded_at = entity.get("RecordedAt")
    if not isinstance(recorded_at, datetime) and _is_legacy(entity):
        # Rows from before this column: their last write is the best bound there is.
        stamp = getattr(entity, "metadata", {}).get("timestamp")
        recorded_at = stamp if isinstance(stamp, datetime) else None
    elif not isinstance(recorded_at, datetime):
        recorded_at = None
    ends_at = entity.get("EndsAt")
    return DesiredItem.model_validate(
        {
            "kind": entity.get("Kind") or kind,
            "coconut_id": entity.get("CoconutId") or coconut_id,
            "revision": int(entity["Revision"]),
            "deleted": bool(entity.get("Deleted") or False),
            "resource": None,
            "staff_ids": json.loads(entity.get("StaffIds") or "[]"),
            "previous_staff_ids": json.loads(entity.get("PreviousStaffIds") or "[]"),
            "withdrawn_staff": json.loads(entity.get("WithdrawnStaffIds") or "[]"),
            "ends_at": ends_at if isinstance(ends_at, datetime) else None,
            "recorded_at": recorded_at,
            "purged": entity.get("Purged") or None,
        }
    )


def _has_content(entity: dict[str, Any]) -> bool:
    return int(entity.get("ContentChunks") or entity.get("Chunks") or 0) > 0


def _decode_legacy(entity: dict[str, Any]) -> DesiredItem:
    packed = b"".join(bytes(entity[f"Record{i}"]) for i in range(int(entity["Chunks"])))
    item = DesiredItem.model_validate_json(zlib.decompress(packed))
    kept = kept_for_event(item.resource) if item.resource is not None else None
    ends_at = item.resource.end if item.resource is not None else None
    return item.model_copy(
        update={"resource": kept, "ends_at": ends_at, "recorded_at": _readable(entity).recorded_at}
    )


def _decode(entity: dict[str, Any], cipher: ContentCipher) -> DesiredItem:
    if _is_legacy(entity):
        return _decode_legacy(entity)
    item = _readable(entity)
    if not _has_content(entity):
        return item
    sealed = b"".join(bytes(entity[f"Content{i}"]) for i in range(int(entity["ContentChunks"])))
    key_id = str(entity.get("ContentKey") or "")
    try:
        packed = cipher.open(key_id, sealed, bound_to=content_binding(item.key, item.revision))
    except CannotOpen as refused:
        raise ContentUnreadable(item.key, str(refused)) from None
    content = json.loads(zlib.decompress(packed))
    return DesiredItem.model_validate({**item.model_dump(exclude=_CONTENT_FIELDS), **content})


def _stale_key(entity: dict[str, Any], cipher: ContentCipher) -> bool:
    """Content sealed under a key other than the current one, or not sealed at all."""
    if not _has_content(entity):
        return False
    return _is_legacy(entity) or not cipher.is_current(str(entity.get("ContentKey") or ""))


class TableItemStore:
    def __init__(self, account: StorageAccount, cipher: ContentCipher) -> None:
        self._table = account.table(ITEMS_TABLE)
        self._cipher = cipher

    async def read(
        self, key: str, *, with_content: bool = True
    ) -> tuple[DesiredItem | None, str | None]:
        try:
            entity = await guarded(lambda: self._table.get_entity(table_key(key), ROW))
        except ResourceNotFoundError:
            return None, None
        etag = str(entity.metadata["etag"])
        if not with_content:
            if _is_legacy(entity):  # staff ids live inside its record: nothing to decrypt
                return readable_part(_decode_legacy(entity)), etag
            return _readable(entity), etag
        item = _decode(entity, self._cipher)
        if _stale_key(entity, self._cipher):
            etag = await self._reseal(item, etag)
        return item, etag

    async def swap(self, item: DesiredItem, etag: str | None) -> bool:
        entity = _encode(item, self._cipher)
        try:
            if etag is None:
                await guarded(lambda: self._table.create_entity(entity))
            else:
                await self._replace(entity, etag)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def scan(
        self, *, ended_before: datetime | None = None, deleted_before: datetime | None = None
    ) -> list[StoredItem]:
        conditions: list[str] = []
        parameters: dict[str, Any] = {}
        if ended_before is not None:
            conditions.append("EndsAt lt @ended")
            parameters["ended"] = ended_before
        if deleted_before is not None:
            conditions.append("( Deleted eq true and RecordedAt lt @deleted )")
            parameters["deleted"] = deleted_before

        def query() -> AsyncIterator[TableEntity]:
            if not conditions:
                return self._table.list_entities(select=_READABLE)
            return self._table.query_entities(
                " or ".join(conditions), parameters=parameters, select=_READABLE
            )

        async def collect() -> list[StoredItem]:
            return [
                StoredItem(
                    _readable(entity),
                    str(entity.metadata["etag"]),
                    has_content=_has_content(entity),
                    stale_key=_stale_key(entity, self._cipher),
                )
                async for entity in query()
            ]

        return await guarded(collect)

    async def remove(self, key: str, etag: str) -> bool:
        try:
            await guarded(
                lambda: self._table.delete_entity(
                    table_key(key), ROW, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError:
            return True
        return True

    async def _replace(self, entity: dict[str, Any], etag: str) -> Mapping[str, Any]:
        return await guarded(
            lambda: self._table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        )

    async def _reseal(self, item: DesiredItem, etag: str) -> str:
        """Write the record back under the current key; the ETag to hand on. Best effort: a
        writer that got there first wrote under the current key too, and a failure here only
        leaves the row for the next read (or the rotation command)."""
        try:
            metadata = await self._replace(_encode(item, self._cipher), etag)
        except (ResourceModifiedError, ResourceNotFoundError, StorageUnavailable, RecordTooLarge):
            return etag
        return str(metadata["etag"])
