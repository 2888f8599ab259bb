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
    """Another worker owns this staff member's mailbox right now (until `until` at the latest)."""

    def __init__(self, staff_id: str, until: datetime) -> None:
        super().__init__(staff_id)
        self.until = until


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

    async def acquire_lease(self, staff_id: str, owner: str, duration: timedelta) -> StaffRecord:
        """Take (or, for the same owner, extend) the staff member's lease by ETag
        compare-and-swap; `LeaseHeld` if another owner has it. Returns the record as it stands
        with the lease taken, so the holder need not read it again."""
        now = datetime.now(UTC)
        lease = {"LeaseOwner": owner, "LeaseUntil": now + duration}
        record = await self.get(staff_id)
        entity = {"PartitionKey": table_key(staff_id), "RowKey": ROW, **lease}
        try:
            if record is None:
                metadata = await guarded(lambda: self._table.create_entity(entity))
                return StaffRecord(staff_id, dict(lease), str(metadata["etag"]))
            until = record.get("LeaseUntil")
            if until is not None and until > now and record.get("LeaseOwner") != owner:
                raise LeaseHeld(staff_id, until)
            etag = await self._swap(entity, record.etag)
        except (ResourceExistsError, ResourceModifiedError):
            raise LeaseHeld(staff_id, now + duration) from None
        return StaffRecord(staff_id, {**record.fields, **lease}, etag)

    async def request_rerun(self, staff_id: str, wake_at: datetime) -> bool:
        """Ask the lease holder for one more pass before it lets go. True when no wake-up is
        scheduled for `wake_at` yet, i.e. the caller should schedule one (in case the holder
        died and never sees the request)."""
        record = await self.get(staff_id)
        scheduled = record.get("WakeupAt") if record else None
        needs_wakeup = scheduled is None or scheduled < wake_at
        if record is not None and record.get("RerunRequested") and not needs_wakeup:
            return False  # already asked: no write, so the holder's lease swaps are not disturbed
        fields: dict[str, Any] = {"RerunRequested": True}
        if needs_wakeup:
            fields["WakeupAt"] = wake_at
        await self.merge(staff_id, fields)
        return needs_wakeup

    async def release_lease(self, staff_id: str, owner: str, fields: dict[str, Any]) -> bool:
        """Give the lease back, writing `fields` in the same update. False, keeping the lease,
        when a rerun was requested meanwhile (the request is consumed): the holder runs again.
        The swap fails if a rerun request lands between the read and the write, so none is
        missed."""
        record = await self.get(staff_id)
        if record is None or record.get("LeaseOwner") != owner:
            return True
        try:
            if record.get("RerunRequested"):
                await self._swap(self._entity(staff_id, {"RerunRequested": False}), record.etag)
                return False
            await self._swap(self._release_entity(staff_id, fields), record.etag)
        except ResourceModifiedError:
            return False
        return True

    async def force_release(self, staff_id: str, owner: str, fields: dict[str, Any]) -> None:
        """Give the lease back whatever else changed (after a failure); still only if ours."""
        record = await self.get(staff_id)
        if record is None or record.get("LeaseOwner") != owner:
            await self.merge(staff_id, fields) if fields else None
            return
        entity = self._release_entity(staff_id, fields)
        await guarded(lambda: self._table.upsert_entity(entity, mode=UpdateMode.MERGE))

    def _entity(self, staff_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"PartitionKey": table_key(staff_id), "RowKey": ROW, **fields}

    def _release_entity(self, staff_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self._entity(staff_id, {**fields, "LeaseOwner": "", "LeaseUntil": datetime.now(UTC)})

    async def _swap(self, entity: dict[str, Any], etag: str) -> str:
        """Merge `entity` if the record is unchanged since `etag`; the new ETag."""
        metadata = await guarded(
            lambda: self._table.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        )
        return str(metadata["etag"])
