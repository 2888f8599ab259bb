"""The `staffitems` table (`sync.ports.ItemLinks`): per staff member, every item that concerns
them and its Graph event.

One partition per staff member (PartitionKey = staff id, RowKey = item key), so a reconcile reads
one partition. A row is marked `Pending` by the webhook whenever its item changes; the reconcile
clears the mark with an ETag compare-and-swap, so a change that lands during a reconcile is never
lost: the swap fails and the row stays pending for the next run.

Each row also says when its item ends (`Ends`), so that a pass reads only what it works on
(`pending`, `current`, `with_events`, ...) and never the whole history of the partition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from sync.concurrency import all_settled
from sync.export.planning import EventLink
from sync.names import STAFF_ITEMS_TABLE
from sync.ports import NO_END, ItemFailure, LinkSave, StaffItemRow
from sync.storage.account import StorageAccount, guarded
from sync.storage.keys import from_table_key, table_key

# When an item whose end is unknown ends, as stored: after every bound a pass reads from.
ENDS_UNKNOWN: Final = datetime(9999, 12, 31, tzinfo=UTC)
# Rows a run has work for.
_WAITING: Final = "Pending eq true or PendingCreate eq true"
# Table Storage allows 15 comparisons per filter: the partition key and 14 event ids.
_IDS_PER_QUERY: Final = 14
# Table Storage's limit on the operations of one entity-group transaction.
_PER_TRANSACTION: Final = 100
# Fewer saves than this go as plain requests, at once: the SDK's multipart encoding and parsing
# cost a transaction about as much client CPU as six plain requests, each save then adding a
# little less than a request of its own (measured on Azurite: 3 saves 6.6 ms as a transaction,
# 4.0 ms as requests; 6 saves 8.2 / 8.3 ms; 10 saves 11.4 / 12.4 ms). Client CPU is what a burst
# is short of; a transaction saves round trips, which matter more the more saves there are.
_MIN_PER_TRANSACTION: Final = 8


def _link_fields(link: EventLink) -> dict[str, Any]:
    return {
        "EventId": link.event_id or "",
        "ContentHash": link.content_hash or "",
        "ChangeKey": link.change_key or "",
        "Generation": link.generation,
        "PendingCreate": link.pending_create,
        "WrittenAfter": link.written_after,
    }


# A failure's columns, cleared by a successful write.
_NO_FAILURE: Final[dict[str, Any]] = {
    "Failures": 0,
    "FailingSince": "",
    "LastError": "",
    "RetryAt": "",
}


def _failure(entity: dict[str, Any]) -> ItemFailure | None:
    count = int(entity.get("Failures") or 0)
    since, retry_at = entity.get("FailingSince"), entity.get("RetryAt")
    if count <= 0 or not isinstance(since, datetime) or not isinstance(retry_at, datetime):
        return None
    return ItemFailure(count, since, str(entity.get("LastError") or ""), retry_at)


def _row(entity: dict[str, Any]) -> StaffItemRow:
    link = EventLink(
        item_key=from_table_key(entity["RowKey"]),
        event_id=entity.get("EventId") or None,
        content_hash=entity.get("ContentHash") or None,
        change_key=entity.get("ChangeKey") or None,
        generation=int(entity.get("Generation") or 0),
        pending_create=bool(entity.get("PendingCreate", False)),
        written_after=str(entity.get("WrittenAfter") or ""),
    )
    return StaffItemRow(
        staff_id=from_table_key(entity["PartitionKey"]),
        link=link,
        pending=bool(entity.get("Pending", False)),
        etag=str(entity.metadata["etag"]) if hasattr(entity, "metadata") else "",
        failure=_failure(entity),
        pending_since=marked if isinstance(marked := entity.get("PendingAt"), datetime) else None,
        ends=ends if isinstance(ends := entity.get("Ends"), datetime) else NO_END,
    )


def _saved_entity(row: StaffItemRow, link: EventLink, *, done: bool) -> dict[str, Any]:
    """The columns `save_link` writes (`Pending` cleared only when the row may be cleared)."""
    entity: dict[str, Any] = {
        "PartitionKey": table_key(row.staff_id),
        "RowKey": table_key(link.item_key),
        **_link_fields(link),
    }
    if done:
        entity.update(_NO_FAILURE)
        if not row.keep_pending:
            entity["Pending"] = False
    return entity


def _operation(save: LinkSave) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A save as a transaction operation: a swap against the ETag read, or (once the row was
    seen changed) a merge that leaves `Pending` alone."""
    entity = _saved_entity(save.row, save.link, done=save.done)
    if save.row.keep_pending:
        return ("upsert", entity, {"mode": UpdateMode.MERGE})
    swap: dict[str, Any] = {
        "mode": UpdateMode.MERGE,
        "etag": save.row.etag,
        "match_condition": MatchConditions.IfNotModified,
    }
    return ("update", entity, swap)


def _after_save(save: LinkSave, etag: str) -> StaffItemRow:
    """The row as `save_link` returns it once its write landed."""
    row = save.row
    if row.keep_pending:
        return StaffItemRow(row.staff_id, save.link, True, etag, keep_pending=True)
    return StaffItemRow(row.staff_id, save.link, row.pending and not save.done, etag)


def _batches(saves: Sequence[LinkSave]) -> list[list[int]]:
    """Indexes of `saves` grouped into transactions: one partition each, each row at most once,
    at most `_PER_TRANSACTION` operations."""
    batches: list[list[int]] = []
    open_batch: dict[str, tuple[list[int], set[str]]] = {}
    for index, save in enumerate(saves):
        batch, keys = open_batch.get(save.row.staff_id, ([], set()))
        if save.link.item_key in keys or len(batch) == _PER_TRANSACTION:
            batch, keys = [], set()
        if not batch:
            batches.append(batch)
        batch.append(index)
        keys.add(save.link.item_key)
        open_batch[save.row.staff_id] = (batch, keys)
    return batches


class TableItemLinks:
    def __init__(self, account: StorageAccount) -> None:
        self._table = account.table(STAFF_ITEMS_TABLE)

    async def mark_pending(
        self, staff_ids: Iterable[str], item_key: str, *, ends: datetime | None = None
    ) -> None:
        """Flag the item for reconcile in each staff member's partition (merge: links survive)."""
        now = datetime.now(UTC)

        async def mark(staff_id: str) -> None:
            entity = {
                "PartitionKey": table_key(staff_id),
                "RowKey": table_key(item_key),
                "Pending": True,
                "PendingAt": now,
                "Ends": ends or ENDS_UNKNOWN,
            }
            await guarded(lambda: self._table.upsert_entity(entity, mode=UpdateMode.MERGE))

        await all_settled(mark(staff_id) for staff_id in sorted(set(staff_ids)))

    async def rows(self, staff_id: str) -> list[StaffItemRow]:
        return await self._query(staff_id, "", {})

    async def pending(self, staff_id: str) -> list[StaffItemRow]:
        return await self._query(staff_id, _WAITING, {})

    async def current(self, staff_id: str, ending_after: datetime) -> list[StaffItemRow]:
        return await self._query(staff_id, f"Ends gt @after or {_WAITING}", {"after": ending_after})

    async def with_events(self, staff_id: str, event_ids: Iterable[str]) -> list[StaffItemRow]:
        wanted = sorted(set(event_ids))
        chunks = [wanted[i : i + _IDS_PER_QUERY] for i in range(0, len(wanted), _IDS_PER_QUERY)]

        async def chunk(ids: list[str]) -> list[StaffItemRow]:
            names = {f"e{n}": event_id for n, event_id in enumerate(ids)}
            return await self._query(
                staff_id, " or ".join(f"EventId eq @{n}" for n in names), names
            )

        found = await all_settled(chunk(ids) for ids in chunks)
        return [row for rows in found for row in rows]

    async def since_round(
        self, staff_id: str, round_mark: str, ending_after: datetime
    ) -> list[StaffItemRow]:
        return await self._query(
            staff_id,
            f"( WrittenAfter eq @mark and Ends gt @after ) or {_WAITING}",
            {"mark": round_mark, "after": ending_after},
        )

    async def failing(self, staff_id: str) -> list[StaffItemRow]:
        return await self._query(staff_id, "Failures gt 0", {})

    async def _query(
        self, staff_id: str, condition: str, parameters: dict[str, Any]
    ) -> list[StaffItemRow]:
        """One partition's rows that meet `condition` (an OData filter; "" for all of them).
        The SDK finds `@name` parameters between spaces: hence the spaced parentheses."""
        query = self._table.query_entities(
            f"PartitionKey eq @pk and ( {condition} )" if condition else "PartitionKey eq @pk",
            parameters={"pk": table_key(staff_id), **parameters},
        )

        async def collect() -> list[StaffItemRow]:
            return [_row(entity) async for entity in query]

        return await guarded(collect)

    async def save_link(self, row: StaffItemRow, link: EventLink, *, done: bool) -> StaffItemRow:
        """Write what is now known of the event. With `done`, also clear `Pending` — unless the
        row changed since it was read (a newer delivery), in which case it stays pending."""
        entity = _saved_entity(row, link, done=done)
        if not row.keep_pending:
            try:
                metadata = await guarded(
                    lambda: self._table.update_entity(
                        entity,
                        mode=UpdateMode.MERGE,
                        etag=row.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                pass
            else:
                return _after_save(LinkSave(row, link, done), str(metadata["etag"]))
        entity.pop("Pending", None)
        metadata = await guarded(lambda: self._table.upsert_entity(entity, mode=UpdateMode.MERGE))
        return StaffItemRow(row.staff_id, link, True, str(metadata["etag"]), keep_pending=True)

    async def save_links(self, saves: Sequence[LinkSave]) -> list[StaffItemRow]:
        """One entity-group transaction per staff member (and per 100 rows) with 3 saves or
        more, plain requests below that. If a row changed since it was read, the transaction
        writes nothing: its saves are then made one by one, which keeps that row pending and
        writes the others as `save_link` would."""
        saved: dict[int, StaffItemRow] = {}
        for batch in _batches(saves):
            if len(batch) < _MIN_PER_TRANSACTION:  # rows of distinct items: at once
                rows = await all_settled(self._save(saves[i]) for i in batch)
                saved.update(zip(batch, rows, strict=True))
                continue
            try:
                metadata = await guarded(
                    lambda b=batch: self._table.submit_transaction(  # type: ignore[misc]
                        [_operation(saves[i]) for i in b]
                    )
                )
            except HttpResponseError:  # a precondition failed (guarded raised 5xx as such)
                for i in batch:
                    saved[i] = await self._save(saves[i])
                continue
            for i, written in zip(batch, metadata, strict=True):
                saved[i] = _after_save(saves[i], str(written["etag"]))
        return [saved[i] for i in range(len(saves))]

    async def _save(self, save: LinkSave) -> StaffItemRow:
        return await self.save_link(save.row, save.link, done=save.done)

    async def record_failure(self, row: StaffItemRow, failure: ItemFailure) -> None:
        entity = {
            "PartitionKey": table_key(row.staff_id),
            "RowKey": table_key(row.item_key),
            "Pending": True,
            "Failures": failure.count,
            "FailingSince": failure.since,
            "LastError": failure.reason,
            "RetryAt": failure.retry_at,
        }
        await guarded(lambda: self._table.upsert_entity(entity, mode=UpdateMode.MERGE))

    async def forget(self, row: StaffItemRow) -> bool:
        """Delete the row unless it changed since it was read; whether it was deleted."""
        if row.keep_pending:
            return False
        try:
            await guarded(
                lambda: self._table.delete_entity(
                    table_key(row.staff_id),
                    table_key(row.item_key),
                    etag=row.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError:
            return True
        return True

    async def row(self, staff_id: str, item_key: str) -> StaffItemRow | None:
        try:
            entity = await guarded(
                lambda: self._table.get_entity(table_key(staff_id), table_key(item_key))
            )
        except ResourceNotFoundError:
            return None
        return _row(entity)

    async def pending_by_staff(self) -> Counter[str]:
        """Rows waiting for a run, per staff member: one scan of the pending rows only."""
        query = self._table.query_entities(
            "Pending eq true or PendingCreate eq true", select=["PartitionKey"]
        )

        async def collect() -> Counter[str]:
            return Counter([from_table_key(entity["PartitionKey"]) async for entity in query])

        return await guarded(collect)
