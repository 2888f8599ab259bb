"""The `items` table (`sync.ports.ItemTable`): the desired state of each Coconut item.

Writes are compare-and-swap on the entity's ETag (create-if-absent, replace-if-unchanged), so two
deliveries racing for one appointment can never let the lower revision win
(`sync.desired_items`). Ids, kind, revision and the deletion flag are columns; the record itself
is compressed and split over binary columns (Table Storage caps a property at 64 KiB).
"""

from __future__ import annotations

import zlib
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from sync.desired_state import DesiredItem
from sync.errors import RecordTooLarge
from sync.names import ITEMS_TABLE
from sync.storage.account import StorageAccount, guarded
from sync.storage.keys import table_key

ROW = "state"
# Table Storage caps a binary property at 64 KiB and an entity at 1 MiB: the compressed record
# is split across properties of this size.
CHUNK = 60 * 1024
MAX_CHUNKS = 15


def _encode(item: DesiredItem) -> dict[str, Any]:
    packed = zlib.compress(item.model_dump_json().encode(), level=6)
    chunks = [packed[i : i + CHUNK] for i in range(0, len(packed), CHUNK)]
    if len(chunks) > MAX_CHUNKS:
        raise RecordTooLarge(f"record of {item.key} is {len(packed)} bytes compressed")
    entity: dict[str, Any] = {
        "PartitionKey": table_key(item.key),
        "RowKey": ROW,
        "Kind": item.kind,
        "Revision": item.revision,
        "Deleted": item.deleted,
        "Chunks": len(chunks),
    }
    for index, chunk in enumerate(chunks):
        entity[f"Record{index}"] = chunk
    return entity


def _decode(entity: dict[str, Any]) -> DesiredItem:
    packed = b"".join(bytes(entity[f"Record{i}"]) for i in range(int(entity["Chunks"])))
    return DesiredItem.model_validate_json(zlib.decompress(packed))


class TableItemStore:
    def __init__(self, account: StorageAccount) -> None:
        self._table = account.table(ITEMS_TABLE)

    async def read(self, key: str) -> tuple[DesiredItem | None, str | None]:
        try:
            entity = await guarded(lambda: self._table.get_entity(table_key(key), ROW))
        except ResourceNotFoundError:
            return None, None
        return _decode(dict(entity)), str(entity.metadata["etag"])

    async def swap(self, item: DesiredItem, etag: str | None) -> bool:
        entity = _encode(item)
        try:
            if etag is None:
                await guarded(lambda: self._table.create_entity(entity))
            else:
                await guarded(
                    lambda: self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        return True
