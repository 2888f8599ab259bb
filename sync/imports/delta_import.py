"""Bring a staff member's Outlook busy time into Coconut from `calendarView/delta`.

One run follows the stored delta link to the end (every page), classifies each item with the pure
filter, and applies the net result to Coconut (PUT/DELETE external events). The new delta link is
stored only after everything was applied (and the rest of the pass done), so a crash replays the
changes. A replay from the old link is not enough, though: an event made after that link and
deleted before the replay is in neither the link's baseline nor the calendar, so the replay says
nothing about it, and the block the failed run PUT for it would stay for good. So before it PUTs a
block a round marks the stored cursor (`ImportCursor.unconfirmed_writes`, through
`before_writes`), the cursor the round stores clears the mark, and a marked cursor makes the next
round a full one, which compares Coconut's blocks with the calendar. (A replayed DELETE is
harmless: an event that counts again since is new or changed to the old link, so reported.)

A full round — the first run, a 410 `syncStateNotFound`, a daily window refresh (the window's end
moves with time) or an operator's resync — reads the whole window and makes Coconut hold exactly
what it found, without duplicating or losing a block (`plan_full_resync`).

Delta items for the service's own events are never imported (no echo); they are how Outlook edits
of Coconut-owned events are noticed (`OwnEventChange`), which the export repairs ("Coconut wins").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.concurrency import all_settled
from sync.errors import DeltaExpired
from sync.imports.busy_time import (
    BusyBlock,
    classify,
    event_end,
    external_id_for,
    net_changes,
    plan_full_resync,
)
from sync.ports import CoconutBusyTime, MailboxCalendar, MailboxUser
from sync.staff_record import ImportCursor

# A new round once a day, so the window's end keeps `horizon` days ahead.
ROUND_LIFETIME = timedelta(hours=24)
COCONUT_CONCURRENCY = 4

# Stores `ImportCursor(unconfirmed_writes=True)` for the staff member (see the module docstring).
BeforeWrites = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class OwnEvent:
    """An event the export wrote, as the export last knew it."""

    item_key: str
    change_key: str | None
    # The delta round completed when the export last wrote it (`ImportCursor.round_mark`).
    written_after: str = ""
    # When its item ends (None: not known).
    ends: datetime | None = None


@dataclass
class OwnEvents:
    """The service's own events in one mailbox, as a round needs them, so that a round's cost
    grows with what it lists, never with the staff member's calendar or history.

    A full round lists the whole window: it reads the own events of the items that end after
    `since` at once (`window`, then `current`). An incremental round lists what changed: it
    starts from `current` (the events written since the round it continues from) and looks up
    any other event it lists by its id. Older events (ending before `since`) are looked up by id
    in either case, when a round lists one."""

    current: Mapping[str, OwnEvent]
    since: datetime | None = None  # None: `current` holds every own event
    look_up: Callable[[set[str]], Awaitable[Mapping[str, OwnEvent]]] | None = None
    # Reads the working window's own events; None once read, or when `current` holds them.
    window: Callable[[], Awaitable[Mapping[str, OwnEvent]]] | None = None

    async def for_full_round(self) -> None:
        """Read the working window's own events, if not read yet."""
        if self.window is not None:
            self.current = {**await self.window(), **self.current}
            self.window = None

    async def among(self, items: list[dict[str, Any]]) -> dict[str, OwnEvent]:
        """`current`, and the own events among the listed items that end before `since` (an
        Outlook edit of an old appointment's event is still not imported as busy time)."""
        known = dict(self.current)
        if self.window is not None and self.look_up is not None:
            return {**known, **await self._listed(items, known, self.look_up)}
        if self.since is None or self.look_up is None:
            return known
        # A day's margin: an all-day event's end in the mailbox's zone is not the item's.
        bound = self.since + timedelta(days=1)
        older = {
            event_id
            for item in items
            if isinstance(event_id := item.get("id"), str)
            and event_id not in known
            and "@removed" not in item
            and (ends := event_end(item)) is not None
            and ends <= bound
        }
        if older:
            known.update(await self.look_up(older))
        return known

    async def _listed(
        self,
        items: list[dict[str, Any]],
        known: Mapping[str, OwnEvent],
        look_up: Callable[[set[str]], Awaitable[Mapping[str, OwnEvent]]],
    ) -> dict[str, OwnEvent]:
        """The own events among the listed items `known` does not hold, the window unread:
        looked up by id, and kept as a window read would have found them (an item that ends
        inside the window) or as `among` looks older ones up (listed, not removed, ending
        before `since`). An old event's removal is a person tidying up their history."""
        wanted = {
            event_id
            for item in items
            if isinstance(event_id := item.get("id"), str) and event_id not in known
        }
        if not wanted:
            return {}
        bound = self.since + timedelta(days=1) if self.since is not None else None
        older = {
            item.get("id")
            for item in items
            if "@removed" not in item
            and (ends := event_end(item)) is not None
            and (bound is None or ends <= bound)
        }
        return {
            event_id: own
            for event_id, own in (await look_up(wanted)).items()
            if self.since is None or own.ends is None or own.ends > self.since or event_id in older
        }


@dataclass
class ImportOutcome:
    cursor: ImportCursor
    window_start: datetime
    # Own events that Outlook changed (new changeKey) or removed (None), by item key.
    drifted: dict[str, str | None] = field(default_factory=dict)
    # Own events a round did not list, by item key, that may have left the calendar unreported:
    # after a full round, every one not listed (a full round reports what is there, never what
    # left); after an incremental one, those written since the round it continues from (delta
    # reports the removal of what a round handed out only: one made and gone in between is in
    # neither). Outside the window, or gone.
    unseen: frozenset[str] = frozenset()


def import_window(
    initialised_at: datetime, now: datetime, horizon_days: int
) -> tuple[datetime, datetime]:
    """[calendar initialisation - 1 day, now + horizon] (DESIGN.md, "Import")."""
    return initialised_at - timedelta(days=1), now + timedelta(days=horizon_days)


class BusyTimeImporter:
    def __init__(
        self, calendar: MailboxCalendar, coconut: CoconutBusyTime, horizon_days: int
    ) -> None:
        self._calendar = calendar
        self._coconut = coconut
        self._horizon_days = horizon_days

    async def run(
        self,
        staff_id: str,
        user: MailboxUser,
        cursor: ImportCursor,
        own: OwnEvents,
        *,
        full: bool = False,
        before_writes: BeforeWrites | None = None,
    ) -> ImportOutcome:
        """One round; `before_writes` is awaited before it PUTs a block, if it does."""
        now = datetime.now(UTC)
        initialised_at = cursor.initialised_at or now
        window = import_window(initialised_at, now, self._horizon_days)
        if full or _needs_full_round(cursor, now):
            await own.for_full_round()
            return await self._full_round(
                staff_id, user, initialised_at, window, own, now, before_writes
            )
        try:
            return await self._incremental(staff_id, user, cursor, window, own, before_writes)
        except DeltaExpired:
            # Graph forgot the token: start a fresh round over the whole window.
            await own.for_full_round()
            return await self._full_round(
                staff_id, user, initialised_at, window, own, now, before_writes
            )

    async def quiet_round(self, user: MailboxUser, cursor: ImportCursor) -> ImportCursor | None:
        """The cursor after an incremental round that lists nothing, from one delta page; None
        when the round is more than that (a full round is due, the page lists changes or has
        more pages): `run` then reads the round itself, from the same stored link."""
        if _needs_full_round(cursor, datetime.now(UTC)):
            return None
        page = await self._calendar.calendar_delta(user.id, link=cursor.delta_link)
        if page.items or page.next_link or page.delta_link is None:
            return None
        return _after_round(cursor.initialised_at, page.delta_link, cursor.round_started_at)

    async def forget_own(self, staff_id: str, event_ids: list[str]) -> None:
        """No busy blocks for events that turned out to be the service's own (a create whose
        answer was lost, imported before it was found): Coconut must not hold them as the staff
        member's own time."""
        await self._apply(staff_id, [], [external_id_for(event_id) for event_id in event_ids])

    async def _incremental(
        self,
        staff_id: str,
        user: MailboxUser,
        cursor: ImportCursor,
        window: tuple[datetime, datetime],
        own: OwnEvents,
        before_writes: BeforeWrites | None,
    ) -> ImportOutcome:
        items, delta_link = await self._read_round(user, cursor.delta_link, None)
        own_events = await own.among(items)
        changes = net_changes(
            classify(i, window_start=window[0], own_event_ids=own_events) for i in items
        )
        to_put, to_delete = list(changes.put.values()), sorted(changes.delete)
        if to_put and before_writes is not None:
            await before_writes()
        await self._apply(staff_id, to_put, to_delete)
        listed = {item.get("id") for item in items}
        since = cursor.round_mark
        return ImportOutcome(
            cursor=_after_round(cursor.initialised_at, delta_link, cursor.round_started_at),
            window_start=window[0],
            drifted=_drifted(items, own_events),
            unseen=frozenset(
                own.item_key
                for event_id, own in own_events.items()
                if own.written_after == since and event_id not in listed
            ),
        )

    async def _full_round(
        self,
        staff_id: str,
        user: MailboxUser,
        initialised_at: datetime,
        window: tuple[datetime, datetime],
        own: OwnEvents,
        now: datetime,
        before_writes: BeforeWrites | None,
    ) -> ImportOutcome:
        items, delta_link = await self._read_round(user, None, window)
        own_events = await own.among(items)
        changes = net_changes(
            classify(i, window_start=window[0], own_event_ids=own_events) for i in items
        )
        held = await self._coconut.busy_blocks(staff_id)
        to_put, to_delete = plan_full_resync(changes.put.values(), held, window_start=window[0])
        if to_put and before_writes is not None:
            await before_writes()
        await self._apply(staff_id, to_put, to_delete)
        listed = {item.get("id") for item in items}
        return ImportOutcome(
            cursor=_after_round(initialised_at, delta_link, now),
            window_start=window[0],
            drifted=_drifted(items, own_events),
            unseen=frozenset(own.item_key for i, own in own_events.items() if i not in listed),
        )

    async def _read_round(
        self, user: MailboxUser, link: str | None, window: tuple[datetime, datetime] | None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item up to the round's delta link (all `nextLink` pages followed)."""
        items: list[dict[str, Any]] = []
        page = await self._calendar.calendar_delta(user.id, link=link, window=window)
        while True:
            items += page.items
            if page.next_link:
                page = await self._calendar.calendar_delta(user.id, link=page.next_link)
                continue
            if page.delta_link is None:
                raise DeltaExpired("delta round ended without a deltaLink")
            return items, page.delta_link

    async def _apply(self, staff_id: str, to_put: list[BusyBlock], to_delete: list[str]) -> None:
        slots = asyncio.Semaphore(COCONUT_CONCURRENCY)

        async def put(block: BusyBlock) -> None:
            async with slots:
                await self._coconut.put_busy_block(staff_id, block)

        async def delete(external_id: str) -> None:
            async with slots:
                await self._coconut.delete_busy_block(staff_id, external_id)

        await all_settled([*(put(b) for b in to_put), *(delete(e) for e in to_delete)])


def _needs_full_round(cursor: ImportCursor, now: datetime) -> bool:
    """No link to go on from, a round too old to continue, or a round that wrote to Coconut
    from this link and whose cursor was never stored (only a full round can tell which of
    Coconut's blocks have no event any more)."""
    started = cursor.round_started_at
    stale_round = started is None or now - started > ROUND_LIFETIME
    return not cursor.delta_link or stale_round or cursor.unconfirmed_writes


def _after_round(
    initialised_at: datetime | None, delta_link: str, round_started_at: datetime | None
) -> ImportCursor:
    return ImportCursor(
        initialised_at=initialised_at,
        delta_link=delta_link,
        round_started_at=round_started_at,
        last_import_at=datetime.now(UTC),
        unconfirmed_writes=False,  # written out: this is what clears the mark
    )


def _drifted(
    items: list[dict[str, Any]], own_events: Mapping[str, OwnEvent]
) -> dict[str, str | None]:
    """Own events whose state in Outlook is not what the export last wrote."""
    drifted: dict[str, str | None] = {}
    for item in items:
        event_id = item.get("id")
        if not isinstance(event_id, str) or event_id not in own_events:
            continue
        own = own_events[event_id]
        if "@removed" in item:
            drifted[own.item_key] = None
        elif item.get("changeKey") != own.change_key:
            change_key = item.get("changeKey")
            drifted[own.item_key] = change_key if isinstance(change_key, str) else ""
    return drifted
