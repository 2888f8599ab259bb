"""The `staff` table: one record per staff member (`sync.staff_record`), one column per field.

PartitionKey = staff id (one partition each: no hot partition at 10,000 staff), RowKey "staff".
The column names below are the only place the record's storage shape is written down; they are
what an administrator sees in Storage Explorer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from sync.errors import ConcurrentUpdate
from sync.names import STAFF_TABLE
from sync.staff_record import GROUPS, StaffChanges, StaffRecord
from sync.storage.account import StorageAccount, guarded
from sync.storage.keys import from_table_key, table_key

ROW: Final = "staff"

# (group, field) -> column.
COLUMNS: Final[Mapping[tuple[str, str], str]] = {
    ("roster", "email"): "Email",
    ("roster", "calendar_sync"): "CalendarSync",
    ("mailbox", "email"): "MailboxEmail",
    ("mailbox", "user_id"): "UserId",
    ("mailbox", "time_zone"): "TimeZone",
    ("mailbox", "resolved_at"): "ResolvedAt",
    ("lease", "owner"): "LeaseOwner",
    ("lease", "until"): "LeaseUntil",
    ("rerun", "requested"): "RerunRequested",
    ("rerun", "wakeup_at"): "WakeupAt",
    ("cursor", "initialised_at"): "InitialisedAt",
    ("cursor", "delta_link"): "DeltaLink",
    ("cursor", "round_started_at"): "RoundStartedAt",
    ("cursor", "last_import_at"): "LastImportAt",
    ("cursor", "unconfirmed_writes"): "UnconfirmedWrites",
    ("subscription", "id"): "SubscriptionId",
    ("subscription", "expires_at"): "SubscriptionExpiresAt",
    ("subscription", "user_id"): "SubscribedUserId",
    ("subscription", "error"): "SubscriptionError",
    ("subscription", "creating_since"): "SubscriptionCreatingSince",
    ("outcome", "status"): "Status",
    ("outcome", "reason"): "Reason",
    ("outcome", "at"): "StatusAt",
    ("outcome", "last_sync_at"): "LastSyncAt",
    ("outcome", "event_count"): "EventCount",
    ("outcome", "throttled_until"): "ThrottledUntil",
    ("outcome", "failures"): "Failures",
    ("outcome", "failing_since"): "FailingSince",
    ("outcome", "count_unsure"): "EventCountUnsure",
    ("connection", "disconnected"): "Disconnected",
    ("connection", "disconnected_at"): "DisconnectedAt",
    ("connection", "removed_events"): "RemovedEvents",
    ("connection", "removed_busy_blocks"): "RemovedBusyBlocks",
    ("listing", "listed_at"): "ListedAt",
    ("listing", "due"): "ListingDue",
    ("listing", "repaired_at"): "RepairedAt",
    ("listing", "created"): "RepairedCreated",
    ("listing", "updated"): "RepairedUpdated",
    ("listing", "removed"): "RepairedRemoved",
}


def _entity(staff_id: str, changes: StaffChanges) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": table_key(staff_id), "RowKey": ROW}
    for group, fields in changes.written().items():
        for name, value in fields.items():
            # Table Storage has no null: an empty string stands for "none" and reads back so.
            entity[COLUMNS[group, name]] = "" if value is None else value
    return entity


def _record(entity: Mapping[str, Any], etag: str) -> StaffRecord:
    groups: dict[str, dict[str, Any]] = {name: {} for name in GROUPS}
    for (group, name), column in COLUMNS.items():
        value = entity.get(column)
        if value is not None and value != "":
            groups[group][name] = value
    return StaffRecord.model_validate(
        {"staff_id": from_table_key(entity["PartitionKey"]), "etag": etag, **groups}
    )


class TableStaffStore:
    def __init__(self, account: StorageAccount) -> None:
        self._table = account.table(STAFF_TABLE)

    async def get(self, staff_id: str) -> StaffRecord | None:
        try:
            entity = await guarded(lambda: self._table.get_entity(table_key(staff_id), ROW))
        except ResourceNotFoundError:
            return None
        return _record(entity, str(entity.metadata["etag"]))

    async def all(self) -> list[StaffRecord]:
        async def collect() -> list[StaffRecord]:
            query = self._table.query_entities(f"RowKey eq '{ROW}'")
            return [_record(e, str(e.metadata["etag"])) async for e in query]

        return await guarded(collect)

    async def create(self, staff_id: str, changes: StaffChanges) -> StaffRecord:
        entity = _entity(staff_id, changes)
        try:
            metadata = await guarded(lambda: self._table.create_entity(entity))
        except ResourceExistsError:
            raise ConcurrentUpdate(f"staff record {staff_id} exists already") from None
        return StaffRecord(staff_id=staff_id).with_changes(changes, str(metadata["etag"]))

    async def merge(
        self, staff_id: str, changes: StaffChanges, *, if_match: str | None = None
    ) -> str:
        entity = _entity(staff_id, changes)
        try:
            if if_match is None:
                metadata = await guarded(
                    lambda: self._table.upsert_entity(entity, mode=UpdateMode.MERGE)
                )
            else:
                metadata = await guarded(
                    lambda: self._table.update_entity(
                        entity,
                        mode=UpdateMode.MERGE,
                        etag=if_match,
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentUpdate(f"staff record {staff_id} changed meanwhile") from None
        return str(metadata["etag"])
