"""The `items` table: the desired state of each Coconut item, highest revision wins.

Writes are compare-and-swap on the entity's ETag (create-if-absent, replace-if-unchanged), so two
deliveries racing for one appointment can never let the lower revision win.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from sync.coconut.webhook_models import Delivery
from sync.desired_state import DesiredItem, Outcome, decide, delivery_key
from sync.names import ITEMS_TABLE
from sync.storage.account import StorageAccount, StorageUnavailable, guarded
from sync.storage.keys import table_key
from sync.storage.staff_items import StaffItemStore

ROW = "state"
# Table Storage caps a binary property at 64 KiB and an entity at 1 MiB: the compressed record
# is split across properties of this size.
CHUNK = 60 * 1024
MAX_CHUNKS = 15
MAX_CAS_ATTEMPTS = 20


class RecordTooLarge(Exception):
    """The desired state does not fit one Table entity even compressed."""


@dataclass(frozen=True)
class RecordResult:
    outcome: Outcome
    # Staff members whose calendars must be reconciled because of this delivery.
    staff_ids: frozenset[str]


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


class DesiredItemStore:
    def __init__(self, account: StorageAccount, staff_items: StaffItemStore) -> None:
        self._table = account.table(ITEMS_TABLE)
        self._staff_items = staff_items

    async def get(self, key: str) -> DesiredItem | None:
        item, _ = await self._read(key)
        return item

    async def _read(self, key: str) -> tuple[DesiredItem | None, str | None]:
        try:
            entity = await guarded(lambda: self._table.get_entity(table_key(key), ROW))
        except ResourceNotFoundError:
            return None, None
        return _decode(dict(entity)), str(entity.metadata["etag"])

    async def _swap(self, entity: dict[str, Any], etag: str | None) -> bool:
        """Create (nothing was read) or replace (unchanged since read); False on a race."""
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
        except (ResourceExistsError, ResourceModifiedError):
            return False
        return True

    async def record(self, delivery: Delivery) -> RecordResult:
        """Record a delivery's effect on its item. Every staff member to reconcile is marked
        pending before the record is committed (a crash in between loses nothing: Coconut's
        retry is a duplicate, which marks again) and after it (no reconcile can clear a mark
        without having seen the committed state)."""
        key = delivery_key(delivery)
        if key is None:
            return RecordResult("ignored", frozenset())
        for _ in range(MAX_CAS_ATTEMPTS):
            recorded, etag = await self._read(key)
            decision = decide(recorded, delivery)
            if decision.outcome != "accepted" or decision.record is None:
                if decision.reconcile_staff:
                    await self._staff_items.mark_pending(decision.reconcile_staff, key)
                return RecordResult(decision.outcome, decision.reconcile_staff)
            await self._staff_items.mark_pending(decision.reconcile_staff, key)
            if not await self._swap(_encode(decision.record), etag):
                continue  # another delivery of this item won the race: decide again
            # Marked again after the commit: a reconcile that saw the first mark but read the
            # item before this commit cannot then clear the mark (its ETag swap fails).
            await self._staff_items.mark_pending(decision.reconcile_staff, key)
            return RecordResult("accepted", decision.reconcile_staff)
        raise StorageUnavailable(f"too much contention recording {key}")
