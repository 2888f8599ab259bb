"""The `staff` table: one record per staff member — mailbox, lease, import state, status.

PartitionKey = staff id (one partition each: no hot partition at 10,000 staff), RowKey "staff".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from sync.names import STAFF_TABLE
from sync.storage.account import StorageAccount, guarded
from sync.storage.keys import from_table_key, table_key

ROW = "staff"
StaffStatus = Literal["Syncing", "Warning", "Error", "Disabled", "Disconnected"]


class LeaseHeld(Exception):
    """Another worker owns this staff member's mailbox right now."""


@dataclass(frozen=True)
class StaffRecord:
    staff_id: str
    fields: dict[str, Any]
    etag: str

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def _record(entity: Any) -> StaffRecord:
    fields = {k: v for k, v in dict(entity).items() if k not in ("PartitionKey", "RowKey")}
    return StaffRecord(from_table_key(entity["PartitionKey"]), fields, str(entity.metadata["etag"]))


class StaffRecords:
    def __init__(self, account: StorageAccount) -> None:
        self._table = account.table(STAFF_TABLE)

    async def get(self, staff_id: str) -> StaffRecord | None:
        try:
            entity = await guarded(lambda: self._table.get_entity(table_key(staff_id), ROW))
        except ResourceNotFoundError:
            return None
        return _record(entity)

    async def all(self) -> list[StaffRecord]:
        async def collect() -> list[StaffRecord]:
            return [_record(e) async for e in self._table.query_entities("RowKey eq 'staff'")]

        return await guarded(collect)

    async def merge(self, staff_id: str, fields: dict[str, Any]) -> None:
        """Set some fields of the record, creating it if absent (last writer wins per field)."""
        entity = {"PartitionKey": table_key(staff_id), "RowKey": ROW, **fields}
        await guarded(lambda: self._table.upsert_entity(entity, mode=UpdateMode.MERGE))

    async def acquire_lease(self, staff_id: str, owner: str, duration: timedelta) -> None:
        """Take the staff member's lease (ETag compare-and-swap); `LeaseHeld` if someone has it."""
        now = datetime.now(UTC)
        lease = {"LeaseOwner": owner, "LeaseUntil": now + duration}
        record = await self.get(staff_id)
        try:
            if record is None:
                entity = {"PartitionKey": table_key(staff_id), "RowKey": ROW, **lease}
                await guarded(lambda: self._table.create_entity(entity))
                return
            until = record.get("LeaseUntil")
            if until is not None and until > now and record.get("LeaseOwner") != owner:
                raise LeaseHeld(staff_id)
            entity = {"PartitionKey": table_key(staff_id), "RowKey": ROW, **lease}
            await guarded(
                lambda: self._table.update_entity(
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=record.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except (ResourceExistsError, ResourceModifiedError):
            raise LeaseHeld(staff_id) from None

    async def release_lease(self, staff_id: str, owner: str, fields: dict[str, Any]) -> None:
        """Give the lease back, writing `fields` in the same update (only if still ours)."""
        record = await self.get(staff_id)
        if record is None or record.get("LeaseOwner") != owner:
            return
        entity = {
            "PartitionKey": table_key(staff_id),
            "RowKey": ROW,
            **fields,
            "LeaseOwner": "",
            "LeaseUntil": datetime.now(UTC),
        }
        try:
            await guarded(
                lambda: self._table.update_entity(
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=record.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except ResourceModifiedError:
            # The record changed under us (e.g. a roster refresh): write the fields anyway.
            fields_only = {k: v for k, v in entity.items() if not k.startswith("Lease")}
            await guarded(lambda: self._table.upsert_entity(fields_only, mode=UpdateMode.MERGE))
