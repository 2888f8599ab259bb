"""Disconnect a staff member: take back everything the service put in their calendar and in
Coconut, then stop syncing them.

Run by the staff worker under the staff member's lease (a `StaffSyncRequest` with
`action="disconnect"`), so no sync of the same mailbox runs meanwhile. Every step is idempotent:
throttling puts the request back and the next run finds less to do.

- Exchange: every event the link rows name, and every event found by the Coconut-id extended
  property (a create whose answer was lost has no link yet);
- Coconut: every external event with one of the service's `ex-` ids (others are not ours);
- the mailbox's Graph change-notification subscription;
- the customer content the service kept for their items, unless a staff member who is still
  synced shares the item (`sync.retention.ContentRetention.withhold_for`).

The link rows are kept, retired (no event, next generation), so a reconnect recreates every
event with a fresh transaction id.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Final

from sync.coconut.api import UnknownCoconutUser
from sync.concurrency import all_settled
from sync.export.planning import retire
from sync.imports.busy_time import is_service_external_id
from sync.ports import ChangeSubscriptions, CoconutBusyTime, ItemLinks, MailboxCalendar
from sync.retention import ContentRetention
from sync.staff_record import (
    Connection,
    ImportCursor,
    Outcome,
    StaffChanges,
    StaffRecord,
    SubscriptionState,
)

# Graph allows 4 concurrent requests per mailbox; Coconut gets the same courtesy.
CONCURRENCY: Final = 4
DISCONNECTED_REASON: Final = (
    "disconnected by an administrator: the service's events were removed from the calendar "
    "and from Coconut, and the customer content kept for them was purged"
)


class StaffDisconnect:
    def __init__(
        self,
        calendar: MailboxCalendar,
        links: ItemLinks,
        coconut: CoconutBusyTime,
        subscriptions: ChangeSubscriptions | None,
        retention: ContentRetention | None = None,
    ) -> None:
        self._calendar = calendar
        self._links = links
        self._coconut = coconut
        self._subscriptions = subscriptions
        self._retention = retention

    async def run(self, staff_id: str, record: StaffRecord) -> StaffChanges:
        """Remove the service's traces; the staff record changes to write."""
        user_id = await self._mailbox(record)
        removed_events = 0
        if user_id:
            removed_events = await self._clear_calendar(staff_id, user_id)
            subscription = record.subscription.id
            if subscription and self._subscriptions is not None:
                await self._subscriptions.remove(user_id, subscription)
        removed_blocks = await self._clear_busy_time(staff_id)
        if self._retention is not None:
            await self._retention.withhold_for(staff_id)
        now = datetime.now(UTC)
        return StaffChanges(
            connection=Connection(
                disconnected=True,
                disconnected_at=now,
                removed_events=removed_events,
                removed_busy_blocks=removed_blocks,
            ),
            outcome=Outcome(
                status="Disconnected", reason=DISCONNECTED_REASON, at=now, event_count=0
            ),
            # A reconnect starts the import afresh and subscribes again.
            cursor=ImportCursor(delta_link=""),
            subscription=SubscriptionState(id="", user_id=""),
        )

    async def _mailbox(self, record: StaffRecord) -> str | None:
        if record.mailbox.user_id:
            return record.mailbox.user_id
        email = record.roster.email
        user = await self._calendar.find_user(email) if email else None
        return user.id if user else None

    async def _clear_calendar(self, staff_id: str, user_id: str) -> int:
        rows = await self._links.rows(staff_id)
        linked = {row.link.event_id for row in rows if row.link.event_id}
        found = {event.id for event in await self._calendar.find_service_events(user_id)}
        slots = asyncio.Semaphore(CONCURRENCY)

        async def delete(event_id: str) -> None:
            async with slots:
                await self._calendar.delete_event(user_id, event_id)

        await all_settled(delete(event_id) for event_id in sorted(linked | found))
        for row in rows:
            if row.link.event_id or row.link.pending_create:
                await self._links.save_link(row, retire(row.link), done=False)
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

        await all_settled(delete(external_id) for external_id in ours)
        return len(ours)
