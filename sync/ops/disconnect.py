"""Disconnect a staff member: take back everything the service put in their calendar and in
Coconut, then stop syncing them.

Run by the staff worker under the staff member's lease (a `StaffSyncRequest` with
`action="disconnect"`), so no sync of the same mailbox runs meanwhile. Every step is idempotent:
throttling puts the request back and the next run finds less to do.

- Exchange: every event the link rows name, and every event found by the Coconut-id extended
  property (a create whose answer was lost has no link yet);
- Coconut: every external event with one of the service's `ex-` ids (others are not ours);
- the mailbox's Graph change-notification subscription.

The link rows are kept, retired (no event, next generation), so a reconnect recreates every
event with a fresh transaction id.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Final

from sync.coconut.api import CoconutApi, UnknownCoconutUser
from sync.export.planning import retire
from sync.graph.mailboxes import StaffMailboxes
from sync.imports.busy_time import is_service_external_id
from sync.notifications.subscriptions import MailboxSubscriptions
from sync.storage.staff_items import StaffItemStore
from sync.storage.staff_records import StaffRecord

# Graph allows 4 concurrent requests per mailbox; Coconut gets the same courtesy.
CONCURRENCY: Final = 4
DISCONNECTED_REASON: Final = (
    "disconnected by an administrator: the service's events were removed from the calendar "
    "and from Coconut"
)


class StaffDisconnect:
    def __init__(
        self,
        mailboxes: StaffMailboxes,
        staff_items: StaffItemStore,
        coconut: CoconutApi,
        subscriptions: MailboxSubscriptions | None,
    ) -> None:
        self._mailboxes = mailboxes
        self._staff_items = staff_items
        self._coconut = coconut
        self._subscriptions = subscriptions

    async def run(self, staff_id: str, record: StaffRecord) -> dict[str, Any]:
        """Remove the service's traces; the staff record fields to write."""
        user_id = await self._mailbox(record)
        removed_events = 0
        if user_id:
            removed_events = await self._clear_calendar(staff_id, user_id)
            subscription = record.get("SubscriptionId") or ""
            if subscription and self._subscriptions is not None:
                await self._subscriptions.remove(user_id, subscription)
        removed_blocks = await self._clear_busy_time(staff_id)
        now = datetime.now(UTC)
        return {
            "Disconnected": True,
            "Status": "Disconnected",
            "Reason": DISCONNECTED_REASON,
            "StatusAt": now,
            "DisconnectedAt": now,
            "RemovedEvents": removed_events,
            "RemovedBusyBlocks": removed_blocks,
            "EventCount": 0,
            # A reconnect starts the import afresh and subscribes again.
            "DeltaLink": "",
            "SubscriptionId": "",
            "SubscribedUserId": "",
        }

    async def _mailbox(self, record: StaffRecord) -> str | None:
        user_id = record.get("UserId") or ""
        if user_id:
            return str(user_id)
        email = record.get("Email") or ""
        user = await self._mailboxes.find_user(str(email)) if email else None
        return user.id if user else None

    async def _clear_calendar(self, staff_id: str, user_id: str) -> int:
        rows = await self._staff_items.rows(staff_id)
        linked = {row.link.event_id for row in rows if row.link.event_id}
        found = {event.id for event in await self._mailboxes.find_service_events(user_id)}
        slots = asyncio.Semaphore(CONCURRENCY)

        async def delete(event_id: str) -> None:
            async with slots:
                await self._mailboxes.delete_event(user_id, event_id)

        await asyncio.gather(*(delete(event_id) for event_id in sorted(linked | found)))
        for row in rows:
            if row.link.event_id or row.link.pending_create:
                await self._staff_items.save_link(row, retire(row.link), done=False)
        return len(linked | found)

    async def _clear_busy_time(self, staff_id: str) -> int:
        try:
            held = await self._coconut.busy_blocks(staff_id)
        except UnknownCoconutUser:
            return 0  # gone from Coconut, and their external events with them
        ours = sorted(external_id for external_id in held if is_service_external_id(external_id))
        slots = asyncio.Semaphore(CONCURRENCY)

        async def delete(external_id: str) -> None:
            async with slots:
                await self._coconut.delete_busy_block(staff_id, external_id)

        await asyncio.gather(*(delete(external_id) for external_id in ours))
        return len(ours)
