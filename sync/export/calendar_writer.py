"""Write one staff member's Exchange calendar to the desired state of their Coconut items.

Given the staff member's link rows and the items they name, renders and plans with the pure core
(`rendering`, `planning`) and applies the plan through the mailbox calendar. The link row is
written before and after every create, so a crash or a lost answer between the two is found on
the next run (by the Coconut-id extended property) instead of creating twice.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sync.concurrency import all_settled
from sync.desired_items import awaits_its_record
from sync.desired_state import DesiredItem, is_wanted_by, leaves_events_alone
from sync.errors import EventGone, Permanent, Retryable, SyncError
from sync.export.planning import (
    CalendarChange,
    CreateEvent,
    EventLink,
    ForgetLink,
    RemoveEvent,
    RemoveUnconfirmedEvent,
    UpdateEvent,
    plan_calendar_changes,
    plan_drift_repairs,
    retire,
    transaction_id,
)
from sync.export.rendering import EventDraft, render_event
from sync.graph.errors import AccessDenied, GraphRefused, GraphRetryable, MailboxUnreachable
from sync.ports import (
    ItemFailure,
    ItemLinks,
    LinkSave,
    MailboxCalendar,
    MailboxUser,
    StaffItemRow,
    WrittenEvent,
)
from sync.timezones import writing_zone

# Graph's answer to a transaction id reused for a different body (graph/FACTS.md).
DUPLICATE_TRANSACTION: Final = "ErrorDuplicateTransactionId"
# A generation this high means something else is wrong: stop moving on and report it.
MAX_GENERATION_SKIPS: Final = 1000
# Changes applied at once: Graph allows 4 concurrent requests per mailbox.
APPLY_CONCURRENCY = 4


# A failing item is retried after 30 s, then twice as long each time, at most every 30 minutes.
ITEM_BACKOFF_FIRST: Final = timedelta(seconds=30)
ITEM_BACKOFF_CAP: Final = timedelta(minutes=30)


@dataclass
class ExportOutcome:
    created: int = 0
    updated: int = 0
    removed: int = 0
    # Items in this calendar (wanted and confirmed) after the run; for the status view.
    events: int = 0
    # Items whose own request failed this time, with the failure recorded on their rows.
    failed: dict[str, ItemFailure] = field(default_factory=dict)
    # Events an earlier, unconfirmed create had made, found and taken on by this run: the
    # import may have seen them before anyone knew they were the service's own.
    adopted: list[str] = field(default_factory=list)
    # The counts above do not say how many events there are now: an earlier create, whose
    # answer never came, had made an event that this run found (taken on, or removed), or an
    # event a person deleted was made anew.
    count_unsure: bool = False
    errors: dict[str, SyncError] = field(default_factory=dict, repr=False)


def item_backoff(count: int) -> timedelta:
    """How long a failing item waits before its `count`+1-th attempt."""
    doubled: timedelta = ITEM_BACKOFF_FIRST * (2 ** min(count - 1, 16))
    return min(ITEM_BACKOFF_CAP, doubled)


# Transient answers about the mailbox (or Graph) as a whole: throttling, service unavailable,
# gateway timeout, and no answer at all. A 500 or a refusal concerns the one request.
MAILBOX_WIDE_STATUSES: Final = frozenset({429, 503, 504, None})


def is_mailbox_wide(failure: SyncError) -> bool:
    """Failures about the mailbox or the service as a whole, not about one item (those fail
    the run, which is retried on a back-off): throttling and outages, a mailbox Graph cannot
    serve or may not touch, storage and Coconut."""
    if isinstance(failure, MailboxUnreachable | AccessDenied) or failure.source != "graph":
        return True
    return isinstance(failure, Retryable) and failure.status in MAILBOX_WIDE_STATUSES


def _link_of(row: StaffItemRow) -> EventLink | None:
    """A row only has a link once an event was started for it (fresh rows are just an index)."""
    link = row.link
    if link.event_id or link.pending_create or link.generation > 0:
        return link
    return None


def desired_drafts(
    staff_id: str, items: dict[str, DesiredItem | None], zone_name: str
) -> dict[str, EventDraft]:
    """The events the staff member should have, written in their mailbox's zone (UTC when
    that zone is not understood: the instants stay exact)."""
    zone = writing_zone(zone_name)
    return {
        key: render_event(item, zone)
        for key, item in items.items()
        if item is not None and is_wanted_by(item, staff_id)
    }


class CalendarWriter:
    def __init__(self, links: ItemLinks, calendar: MailboxCalendar) -> None:
        self._links = links
        self._calendar = calendar

    async def write(
        self,
        staff_id: str,
        user: MailboxUser,
        rows: list[StaffItemRow],
        items: dict[str, DesiredItem | None],
        *,
        check_drift: bool = False,
        round_mark: str = "",
    ) -> ExportOutcome:
        """Apply the plan for `rows` (whose items are in `items`); events written carry
        `round_mark`, the last delta round completed (`ImportCursor.round_mark`)."""
        by_key = {row.item_key: row for row in rows}
        desired = desired_drafts(staff_id, items, user.time_zone)
        # An item whose content is gone (past retention) leaves its event as history.
        links = {
            row.item_key: link
            for row in rows
            if (link := _link_of(row)) is not None
            and not leaves_events_alone(items.get(row.item_key))
        }
        finished = {key for key, item in items.items() if item is not None and item.deleted}
        changes = plan_calendar_changes(staff_id, desired, links, finished=finished)
        if check_drift:
            changes += await self._drift_repairs(staff_id, user, desired, links, changes)
        outcome = ExportOutcome()
        changed = {change.item_key for change in changes}
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)
        before = {key: row.link for key, row in by_key.items()}
        links_after = _LinksAfter(await self._links_first(by_key, changes), before)

        async def apply(change: CalendarChange) -> None:
            async with slots:
                row = by_key[change.item_key]
                await self._isolated(staff_id, user, row, change, outcome, round_mark, links_after)

        try:
            await all_settled(apply(change) for change in changes)
        except Exception:
            # The events made before the failure stay known (else only a look-up finds them).
            await self._links.save_links(links_after.saves)
            raise
        await self._record_failures(by_key, outcome)
        # Rows that needed nothing: clear their pending mark (a newer delivery keeps it set,
        # and so does a first delivery of an item not committed yet).
        now = datetime.now(UTC)
        idle = [
            LinkSave(row, row.link, done=True)
            for row in rows
            if row.item_key not in changed
            and row.pending
            and not awaits_its_record(row, items.get(row.item_key), now)
        ]
        await self._links.save_links([*links_after.saves, *idle])
        outcome.events = len(desired)
        return outcome

    async def _links_first(
        self, by_key: dict[str, StaffItemRow], changes: list[CalendarChange]
    ) -> set[str]:
        """Write the link of every plain create before any is posted, in one request (a crash
        or a lost answer after the POST is then found by the next run, never created twice);
        `by_key` is updated with the rows written. The items whose link is written."""
        creates = [c for c in changes if isinstance(c, CreateEvent) and not c.recover]
        saves = [
            LinkSave(by_key[c.item_key], _creating(c.item_key, c.generation), done=False)
            for c in creates
        ]
        for change, row in zip(creates, await self._links.save_links(saves), strict=True):
            by_key[change.item_key] = row
        return {change.item_key for change in creates}

    async def _drift_repairs(
        self,
        staff_id: str,
        user: MailboxUser,
        desired: dict[str, EventDraft],
        links: dict[str, EventLink],
        planned: list[CalendarChange],
    ) -> list[CalendarChange]:
        """Coconut wins: look at each confirmed event and repair what Outlook changed."""
        already = {change.item_key for change in planned}
        observed: dict[str, str | None] = {}
        for key, link in links.items():
            if key in already or link.event_id is None or link.pending_create:
                continue
            observed[key] = await self._calendar.change_key_of(user.id, link.event_id)
        return plan_drift_repairs(staff_id, desired, links, observed)

    async def repair_drift(
        self,
        staff_id: str,
        user: MailboxUser,
        rows: list[StaffItemRow],
        items: dict[str, DesiredItem | None],
        drifted: dict[str, str | None],
        *,
        round_mark: str = "",
    ) -> ExportOutcome:
        """Coconut wins over Outlook edits seen in the import's delta: `drifted` maps item keys to
        the changeKey Outlook now has, or None when the event left the calendar view (or was
        never listed by a round: see `EventLink.written_after`)."""
        by_key = {row.item_key: row for row in rows}
        links = {row.item_key: link for row in rows if (link := _link_of(row)) is not None}
        observed: dict[str, str | None] = {}
        outcome = ExportOutcome()
        for key, change_key in drifted.items():
            link = links.get(key)
            if link is None or link.event_id is None:
                continue
            if change_key is None:
                # Deleted, or moved out of the window by a person: only Graph can tell which.
                try:
                    change_key = await self._calendar.change_key_of(user.id, link.event_id)
                except (Retryable, Permanent) as failure:
                    if is_mailbox_wide(failure):
                        raise
                    # This event's own trouble: the item is retried on its own back-off, and
                    # the rest of the pass (the busy time just imported) goes on.
                    by_key[key] = await self._failed(by_key[key], key, failure, outcome)
                    continue
            observed[key] = change_key
        desired = desired_drafts(staff_id, items, user.time_zone)
        repairs = plan_drift_repairs(staff_id, desired, links, observed)
        for change in repairs:
            row = by_key[change.item_key]
            await self._isolated(staff_id, user, row, change, outcome, round_mark)
        await self._record_failures(by_key, outcome)
        return outcome

    async def _isolated(
        self,
        staff_id: str,
        user: MailboxUser,
        row: StaffItemRow,
        change: CalendarChange,
        outcome: ExportOutcome,
        round_mark: str,
        links_after: _LinksAfter | None = None,
    ) -> None:
        """Apply one change; a failure of this item's own request is noted for it, so that
        the other items go on (graph/FACTS.md: a single item can fail persistently)."""
        try:
            await self._apply(staff_id, user, row, change, outcome, round_mark, links_after)
        except (Retryable, Permanent) as failure:
            if is_mailbox_wide(failure):
                raise
            if isinstance(change, UpdateEvent):
                await self._failed(row, change.item_key, failure, outcome)
            else:
                _note_failure(row, change.item_key, failure, outcome)

    async def _failed(
        self, row: StaffItemRow, key: str, failure: SyncError, outcome: ExportOutcome
    ) -> StaffItemRow:
        """Note the failure of an item whose event may differ from its draft (an Outlook edit,
        say): the hash is forgotten, so the next attempt writes the event whatever the plan
        would see otherwise."""
        if row.link.content_hash is not None:
            forgotten = row.link.model_copy(update={"content_hash": None})
            row = await self._links.save_link(row, forgotten, done=False)
        _note_failure(row, key, failure, outcome)
        return row

    async def _record_failures(self, rows: dict[str, StaffItemRow], outcome: ExportOutcome) -> None:
        """Keep each failed item pending with its failure and retry time (trouble with the
        mailbox as a whole failed the run instead: `is_mailbox_wide`)."""
        for key, failure in outcome.failed.items():
            await self._links.record_failure(rows[key], failure)

    async def _apply(
        self,
        staff_id: str,
        user: MailboxUser,
        row: StaffItemRow,
        change: CalendarChange,
        outcome: ExportOutcome,
        round_mark: str,
        links_after: _LinksAfter | None = None,
    ) -> None:
        match change:
            case CreateEvent():
                await self._create(staff_id, user, row, change, outcome, round_mark, links_after)
                outcome.created += 1
            case UpdateEvent(event_id=event_id, draft=draft):
                try:
                    written = await self._calendar.update_event(user.id, event_id, draft.to_graph())
                except EventGone:
                    # Deleted in Outlook meanwhile: Coconut wins, make it anew.
                    generation = row.link.generation + 1
                    recreate = CreateEvent(
                        item_key=change.item_key,
                        draft=draft,
                        transaction_id=transaction_id(staff_id, change.item_key, generation),
                        generation=generation,
                    )
                    await self._create(staff_id, user, row, recreate, outcome, round_mark)
                    outcome.created += 1
                    outcome.count_unsure = True
                    return
                link = EventLink(
                    item_key=change.item_key,
                    event_id=written.id,
                    content_hash=draft.content_hash(),
                    change_key=written.change_key,
                    generation=row.link.generation,
                    written_after=round_mark,
                )
                await self._links.save_link(row, link, done=True)
                outcome.updated += 1
            case RemoveEvent(event_id=event_id, forget_link=forget_link):
                await self._calendar.delete_event(user.id, event_id)
                await self._drop(row, forget_link)
                outcome.removed += 1
            case RemoveUnconfirmedEvent(forget_link=forget_link):
                for event in await self._calendar.find_events_for(user.id, change.item_key):
                    await self._calendar.delete_event(user.id, event.id)
                await self._drop(row, forget_link)
                outcome.removed += 1
                outcome.count_unsure = True
            case ForgetLink():
                await self._drop(row, forget=True)

    async def _create(
        self,
        staff_id: str,
        user: MailboxUser,
        row: StaffItemRow,
        change: CreateEvent,
        outcome: ExportOutcome,
        round_mark: str,
        links_after: _LinksAfter | None = None,
    ) -> None:
        """Make the item's event; its link is written after (now, or with the run's other
        links when `links_after` collects them)."""
        key, body = change.item_key, change.draft.to_graph()
        generation = change.generation
        written = await self._adopt(user, key, body, outcome) if change.recover else None
        if change.recover and written is None:
            # The first attempt may have made an event that a person has deleted since: its
            # transaction id would answer with that dead event. Use the next one.
            generation += 1
        if written is None:
            linked_first = links_after is not None and key in links_after.written_first
            unmade: Callable[[], None] | None = None
            if links_after is not None and linked_first:
                # Refused by Graph or held back by the pacer, so never made: the link goes back
                # to what it was, and the next run posts without looking first.
                revert = LinkSave(row, links_after.before[key], done=False)
                unmade = functools.partial(links_after.saves.append, revert)
            written, generation, row = await self._post(
                staff_id, user, row, key, body, generation, outcome, unmade=unmade
            )
        link = EventLink(
            item_key=key,
            event_id=written.id,
            content_hash=change.draft.content_hash(),
            change_key=written.change_key,
            generation=generation,
            written_after=round_mark,
        )
        if links_after is not None:
            links_after.saves.append(LinkSave(row, link, done=True))
        else:
            await self._links.save_link(row, link, done=True)

    async def _adopt(
        self, user: MailboxUser, key: str, body: dict[str, Any], outcome: ExportOutcome
    ) -> WrittenEvent | None:
        """The item's event if an earlier attempt made it (extras deleted), brought to `body`."""
        found = await self._calendar.find_events_for(user.id, key)
        if not found:
            return None
        for extra in found[1:]:  # never leave two events for one item
            await self._calendar.delete_event(user.id, extra.id)
        outcome.adopted.append(found[0].id)
        outcome.count_unsure = True
        return await self._calendar.update_event(user.id, found[0].id, body)

    async def _post(
        self,
        staff_id: str,
        user: MailboxUser,
        row: StaffItemRow,
        key: str,
        body: dict[str, Any],
        generation: int,
        outcome: ExportOutcome,
        *,
        unmade: Callable[[], None] | None = None,
    ) -> tuple[WrittenEvent, int, StaffItemRow]:
        """POST the event under `generation`'s transaction id, the link written first (if the
        answer is lost, the next run looks before it posts). A tenant that says the id was
        used for a different event (`ErrorDuplicateTransactionId`, graph/FACTS.md) gets the
        event found, or the next generation: never the same id again. `unmade`: `row` holds
        the link already (written with the run's other creates), and this is called if Graph
        refused every attempt of the first POST with a 429 (so it was never made)."""
        linked_first = unmade is not None
        while True:
            if not linked_first:
                row = await self._links.save_link(row, _creating(key, generation), done=False)
            try:
                written = await self._calendar.create_event(
                    user.id,
                    body,
                    transaction_id=transaction_id(staff_id, key, generation),
                    coconut_key=key,
                )
            except GraphRetryable as refused:
                if linked_first and unmade is not None and refused.never_applied:
                    unmade()
                raise
            except GraphRefused as refused:
                if refused.code != DUPLICATE_TRANSACTION or generation >= MAX_GENERATION_SKIPS:
                    raise
                adopted = await self._adopt(user, key, body, outcome)
                if adopted is not None:
                    return adopted, generation, row
                generation += 1
                linked_first = False
                continue
            return written, generation, row

    async def _drop(self, row: StaffItemRow, forget: bool) -> None:
        """After a removal: delete the row for an item deleted in Coconut, else keep it retired
        (no event, next generation) so a later create cannot reuse a spent transaction id."""
        if forget and await self._links.forget(row):
            return
        retired = retire(row.link) if row.link.event_id or row.link.pending_create else row.link
        await self._links.save_link(row, retired, done=not forget)


def _creating(key: str, generation: int) -> EventLink:
    """The link of a create about to be posted under `generation`'s transaction id."""
    return EventLink(item_key=key, generation=generation, pending_create=True)


@dataclass
class _LinksAfter:
    """One run's links to write once its creates are done, in one request: the items whose
    link was written before their POST, and the links of the events made."""

    written_first: set[str]
    # Each row's link before the run wrote any (a create refused before it was made reverts).
    before: dict[str, EventLink] = field(default_factory=dict)
    saves: list[LinkSave] = field(default_factory=list)


def _note_failure(row: StaffItemRow, key: str, failure: SyncError, outcome: ExportOutcome) -> None:
    """Count one more failure of the item, retried on its own growing back-off."""
    now = datetime.now(UTC)
    before = row.failure
    count = before.count + 1 if before else 1
    outcome.failed[key] = ItemFailure(
        count=count,
        since=before.since if before else now,
        reason=str(failure),
        retry_at=now + item_backoff(count),
    )
    outcome.errors[key] = failure
