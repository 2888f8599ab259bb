"""The queue worker: bring one staff member in step, under their lease.

One run takes the staff member's lease (`sync.lease`: one worker per mailbox), then makes a pass:
find their Microsoft 365 mailbox (cached in the staff record with its time zone), write the
calendar to Coconut's desired state (`sync.export.calendar_writer`), import the staff member's
busy time (`sync.imports.delta_import`), keep the change-notification subscription alive, and
record the outcome as the staff member's status. Requests that arrived meanwhile get one more
pass each (folded together), from the record as the previous pass left it. A batch message (the
timer's fan-out) is one such run per staff member (`sync.batch_runs`); runs for one staff member
in one process take turns (`sync.turns`).

Failures come in two kinds (`sync.errors`): `Retryable` puts the request back on the queue after
the delay asked for (one retry is kept while Graph throttles the mailbox; plain requests that
arrive before then are dropped, their work being in storage), `Permanent` becomes the staff
member's Error status with its reason.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from sync.batch_runs import run_batch
from sync.coconut.api import UnknownCoconutUser
from sync.desired_items import DesiredItemStore
from sync.desired_state import DesiredItem, is_wanted_by
from sync.errors import Permanent, Retryable
from sync.export.calendar_writer import CalendarWriter, ExportOutcome, is_mailbox_wide
from sync.graph.calls import PACED
from sync.graph.errors import MailboxUnreachable
from sync.imports.delta_import import BusyTimeImporter, ImportOutcome, OwnEvent, OwnEvents
from sync.lease import HeldLease, LeaseHeld, StaffLease
from sync.listings import ListingReconciler
from sync.mailbox_cache import cached_mailbox
from sync.ops.disconnect import StaffDisconnect
from sync.ports import (
    ChangeSubscriptions,
    ItemFailure,
    ItemLinks,
    MailboxCalendar,
    MailboxUser,
    StaffItemRow,
    StaffStore,
    WorkQueue,
)
from sync.quiet_pass import QuietPass
from sync.retention import DEFAULT_RETENTION, oldest_listed_end
from sync.staff_record import (
    ImportCursor,
    Listing,
    Mailbox,
    Outcome,
    RecordedStatus,
    Roster,
    StaffChanges,
    StaffRecord,
    SubscriptionState,
)
from sync.telemetry import (
    EXCHANGE_TO_COCONUT_MS,
    WEBHOOK_TO_EXCHANGE_MS,
    count_lost_webhooks_repaired,
    log_operation,
    record_latency,
    record_queue_age,
    staff_context,
)
from sync.timezones import zone_note
from sync.turns import LocalTurns
from sync.work import QueuedWork, StaffSyncBatch, StaffSyncRequest

log = logging.getLogger("sync.staff")

# Passes one run makes for sync requests that arrived while it held the lease.
MAX_PASSES: Final = 5
# A full or disconnect request that finds the mailbox busy tries again after this long.
SPECIAL_RETRY_SECONDS: Final = 3
# A run that fails for a reason that may pass is retried after 5 s, then twice as long each
# time up to 5 minutes (the timer's cadence); after 10 minutes the status is Error.
RUN_BACKOFF_FIRST: Final = 5.0
RUN_BACKOFF_CAP: Final = 300.0
RUN_ERROR_AFTER: Final = timedelta(minutes=10)
# A paced run's retry is not dropped as "already scheduled" if it arrives this much early.
PACED_MARGIN_SECONDS: Final = 0.5
# An item that keeps failing while the rest of the mailbox syncs: Error after 30 minutes.
ITEM_ERROR_AFTER: Final = timedelta(minutes=30)
_SOURCES: Final = {"graph": "Microsoft Graph", "coconut": "the Coconut API", "storage": "storage"}

RunOutcome = Literal["synced", "warning", "error", "deferred", "disconnected", "disabled"]
# Triggers whose pass reads Outlook too (the others only write the calendar).
IMPORT_TRIGGERS: Final = frozenset({"timer", "notification", "ops", "resync"})
# Requests sent without a delay: their time in the queue is the queue's own backlog.
UNDELAYED_TRIGGERS: Final = frozenset({"webhook", "notification", "ops"})
# Severity of a run's record (the workbook counts severity >= Error per staff member).
_LOG_LEVELS: Final = {"error": logging.ERROR, "warning": logging.WARNING}


@dataclass(frozen=True)
class RunReport:
    """What one pass (or a whole run) came to, and the staff record changes it writes."""

    outcome: RunOutcome
    changes: StaffChanges = field(default_factory=StaffChanges)
    export: ExportOutcome | None = None
    # Seconds until failing items are due again (None: none failing).
    retry_in: float | None = None


class StaffWorker:
    def __init__(
        self,
        *,
        staff: StaffStore,
        lease: StaffLease,
        items: DesiredItemStore,
        links: ItemLinks,
        calendar: MailboxCalendar,
        queue: WorkQueue,
        importer: BusyTimeImporter | None = None,
        subscriptions: ChangeSubscriptions | None = None,
        disconnect: StaffDisconnect | None = None,
        listings: ListingReconciler | None = None,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._staff = staff
        self._lease = lease
        self._items = items
        self._links = links
        self._calendar = calendar
        self._queue = queue
        self._importer = importer
        self._subscriptions = subscriptions
        self._disconnect = disconnect
        self._listings = listings
        self._retention = retention
        self._writer = CalendarWriter(links, calendar)
        self._turns = LocalTurns()
        self._quiet = (
            QuietPass(
                staff=staff,
                lease=lease,
                links=links,
                importer=importer,
                subscribes=subscriptions is not None,
            )
            if importer is not None
            else None
        )

    async def handle(self, work: QueuedWork) -> None:
        """A queue message's work: one staff member's request, or a batch of them."""
        if isinstance(work, StaffSyncBatch):
            await run_batch(self.run, self._queue, work, retry_after=RUN_BACKOFF_FIRST)
        else:
            await self.run(work)

    async def run(self, request: StaffSyncRequest) -> RunReport:
        with staff_context(request.staff_id):
            started = time.monotonic()
            if request.attempt == 0 and request.reason in UNDELAYED_TRIGGERS:
                record_queue_age(_ms_since(request.requested_at), trigger=request.reason)
            report, detail, status = await self._run(request)
            self._log(request, report, started, detail=detail, graph_status=status)
            return report

    async def _run(self, request: StaffSyncRequest) -> tuple[RunReport, str, int | None]:
        """The run's report, and for the log a detail and the Graph status that deferred it."""
        if self._turns.covered(request):
            return RunReport("deferred"), "covered by a waiting run", None
        result: tuple[RunReport, str, int | None]
        async with self._turns.turn(request) as turn:
            if turn.answered:
                result = RunReport("synced"), "answered by the run before it", None
            else:
                result = await self._run_in_turn(request)
        if result[0].outcome == "synced":
            for other in turn.covered:  # their changes landed with this run
                _record_landed(other)
        return result

    async def _run_in_turn(self, request: StaffSyncRequest) -> tuple[RunReport, str, int | None]:
        if self._quiet is not None:
            quiet = await self._quiet.run(request)
            if quiet is not None:
                return RunReport("synced", quiet), "", None
        try:
            held = await self._lease.acquire(request.staff_id, roster=request.roster)
        except LeaseHeld as busy:
            await self._defer_while_leased(request, busy.until)
            return RunReport("deferred"), "lease held", None
        async with held:
            if _coalesced_while_throttled(request, held.record):
                return RunReport("deferred"), "retry already scheduled", None
            try:
                return await self._passes(request, held), "", None
            except Retryable as transient:
                delay, changes = _back_off(held.record, transient)
                await held.give_up(changes)
                await self._queue.send(request.retried(), delay_seconds=delay)
                graph_status = transient.status if transient.source == "graph" else None
                return RunReport("deferred"), str(transient), graph_status

    async def _passes(self, request: StaffSyncRequest, held: HeldLease) -> RunReport:
        current, first = request, True
        for _ in range(MAX_PASSES):
            # Requests already waiting now were sent after their marks: this pass reads them.
            sighting = self._turns.sighting(request.staff_id)
            report = await self._pass(current, held.record, first=first)
            if await held.finish_pass(report.changes):
                if report.retry_in is not None:
                    # Failing items are due then: one request for them (the timer is later).
                    retry = StaffSyncRequest(staff_id=request.staff_id, reason="retry")
                    await self._queue.send(retry, delay_seconds=report.retry_in)
                if report.outcome == "synced":
                    self._turns.answer(request, sighting)
                return report
            # Someone asked for a sync while this pass ran: one more (incremental) pass. It
            # stands for the requests folded in, not for this one's special work (a resync's
            # drift check, a repair's listing read: `_pass` reads listings on a first pass only).
            current = request.model_copy(update={"full": False, "action": "sync"})
            first = False
        await self._queue.send(request.retried())
        return report

    async def _defer_while_leased(self, request: StaffSyncRequest, until: datetime) -> None:
        """The holder makes one more pass before letting go; a wake-up at the lease's end covers
        a holder that died. Requests for more than a plain pass (full, disconnect, the scheduled
        repair) keep their own message and try again shortly."""
        if _special(request):
            await self._queue.send(request.retried(), delay_seconds=SPECIAL_RETRY_SECONDS)
            return
        wake = max(until, datetime.now(UTC)) + timedelta(seconds=1)
        delay = (wake - datetime.now(UTC)).total_seconds()
        asked = await self._lease.request_rerun(request.staff_id, wake)
        if asked == "free":
            # The holder let go before it could see the request: run it now, not at the
            # lease's end.
            await self._queue.send(request.retried())
        elif asked == "wake":
            await self._queue.send(request.retried(), delay_seconds=delay)

    async def _pass(
        self, request: StaffSyncRequest, record: StaffRecord, *, first: bool = True
    ) -> RunReport:
        staff_id = request.staff_id
        if request.action == "disconnect":
            # Only while still wanted: a reconnect since the request cancels it.
            if not record.connection.disconnected or self._disconnect is None:
                return RunReport("disconnected")
            return RunReport("disconnected", await self._disconnect.run(staff_id, record))
        if record.connection.disconnected:
            return RunReport("disconnected")
        if record.roster.calendar_sync is False:
            return _report(
                "disabled", "Disabled", "calendar sync is off for this staff member in Coconut"
            )
        listed = StaffChanges()
        if first and self._listings is not None and _reads_listings(request, record):
            listed = await self._read_listings(request, record)
        now = datetime.now(UTC)
        # Only what the pass needs, never the whole history: the rows waiting for a run, and
        # for a full pass those of the items still inside the working window.
        if request.full:
            rows = await self._links.current(staff_id, self._kept_since(now))
        else:
            rows = await self._links.pending(staff_id)
        if request.reason == "reconcile" and not any(
            (r.pending or r.link.pending_create) and r.due(now) for r in rows
        ):
            # Coconut's record and ours agree: nothing to write, no Graph request at all.
            return RunReport("synced", listed)
        # A failing item waits for its retry time (an operator's full resync does not).
        work = [
            r for r in rows if request.full or ((r.pending or r.link.pending_create) and r.due(now))
        ]
        try:
            items = await self._items.load(r.item_key for r in work)
        except Permanent as unreadable:  # content that cannot be decrypted (ContentUnreadable)
            return _report("error", "Error", str(unreadable))
        email = _staff_email(staff_id, items, record)
        if email is None:
            return _report(
                "warning", "Warning", "no e-mail address known for this staff member yet"
            )
        learned = listed.then(StaffChanges(roster=Roster(email=email)))
        if email != record.roster.email:
            # Stored at once: a pass that fails later must not forget whose mailbox it is (the
            # next pass may have no item left that names the e-mail).
            await self._staff.merge(staff_id, learned)
        try:
            user = await self._mailbox(staff_id, email, record)
        except MailboxUnreachable as unreachable:
            return _report("warning", "Warning", str(unreachable), learned)
        except Permanent as refused:
            return _report("error", "Error", str(refused), learned)
        if user is None:
            return _report(
                "warning",
                "Warning",
                "no Microsoft 365 user has this staff member's e-mail as mail",
                learned.then(StaffChanges(mailbox=Mailbox(user_id=""))),
            )
        event_count = record.outcome.event_count
        try:
            export = await self._writer.write(
                staff_id,
                user,
                work,
                items,
                check_drift=request.full,
                round_mark=record.cursor.round_mark,
            )
            if export.adopted and self._importer is not None:
                await self._importer.forget_own(staff_id, export.adopted)
            event_count = (
                export.events
                if request.full
                else max(0, event_count + export.created - export.removed)
            )
            # A full pass counts from the links already (`export.events`), as does an import
            # round that read the working window.
            count_known = request.full
            if _imports(request, record):
                if self._importer is not None:
                    imported = await self._import(staff_id, user, record, full=request.full)
                    learned = learned.then(imported)
                    if imported.outcome is not None:
                        event_count, count_known = imported.outcome.event_count, True
                if self._subscriptions is not None:
                    learned = learned.then(await self._subscribe(staff_id, user, record))
            if not count_known and (record.outcome.count_unsure or export.count_unsure):
                # The changes alone do not say how many events there are now (a run gave up
                # after writing, or an earlier create's event was found): count the links.
                event_count = await self._count_events(staff_id)
        except Permanent as failure:
            counted = learned.then(StaffChanges(outcome=Outcome(event_count=event_count)))
            # A mailbox Graph cannot serve heals in Exchange, not here: a warning, and the
            # timer's next cycle tries again (no poison message, no hot retry).
            if isinstance(failure, MailboxUnreachable):
                return _report("warning", "Warning", str(failure), counted)
            return _report("error", "Error", str(failure), counted)
        failing = await self._failing(staff_id, rows, export)
        now = datetime.now(UTC)
        if failing and now - min(f.since for f in failing.values()) >= ITEM_ERROR_AFTER:
            reason = _failing_reason(failing)
            return _report(
                "error", "Error", reason, learned, event_count=event_count, retry=failing
            )
        synced = Outcome.synced(
            now,
            reason=_failing_reason(failing) if failing else zone_note(user.time_zone),
            event_count=event_count,
        )
        changes = learned.then(StaffChanges(outcome=synced))
        return RunReport("synced", changes, export, retry_in=_soonest(failing))

    async def _subscribe(
        self, staff_id: str, user: MailboxUser, record: StaffRecord
    ) -> StaffChanges:
        """Keep the mailbox's change-notification subscription alive; the timer is the safety
        net, so a refused subscription is noted but does not fail the sync."""
        assert self._subscriptions is not None

        async def before_create(mark: SubscriptionState) -> None:
            # Stored at once: a create whose answer is lost is then looked for, not made again
            # (the pass that sent it may fail before its outcome is written).
            await self._staff.merge(staff_id, StaffChanges(subscription=mark))

        try:
            state = await self._subscriptions.ensure(
                staff_id, user.id, record.subscription, before_create
            )
        except Permanent as failure:
            return StaffChanges(subscription=SubscriptionState(error=str(failure)))
        if state is None:
            return StaffChanges()
        return StaffChanges(subscription=state)

    async def _import(
        self, staff_id: str, user: MailboxUser, record: StaffRecord, *, full: bool
    ) -> StaffChanges:
        """Outlook busy time into Coconut; Outlook edits of Coconut-owned events are repaired.
        The rows are read as the export left them, and only those the round needs (`OwnEvents`):
        an incremental round starts from the rows written since the round it continues from
        and those waiting, and looks up any other event it lists by its id; a full round reads
        the working window's rows. A staff member's calendar then costs a round nothing unless
        the round lists it."""
        assert self._importer is not None
        kept_since = self._kept_since(datetime.now(UTC))
        cursor = record.cursor
        if record.mailbox.user_id and record.mailbox.user_id != user.id:
            # The e-mail now names another Microsoft 365 user: the old mailbox's delta link
            # says nothing about this one.
            cursor = cursor.model_copy(update={"delta_link": ""})
        incremental = not full and bool(cursor.delta_link) and bool(cursor.round_mark)
        if incremental:
            rows = await self._links.since_round(staff_id, cursor.round_mark, kept_since)
        else:
            rows = await self._links.current(staff_id, kept_since)
        own = _own_events(rows)
        older: list[StaffItemRow] = []
        window: list[StaffItemRow] = []

        async def look_up(event_ids: set[str]) -> dict[str, OwnEvent]:
            found = await self._links.with_events(staff_id, event_ids)
            older.extend(found)
            return _own_events(found)

        async def read_window() -> dict[str, OwnEvent]:
            window.extend(await self._links.current(staff_id, kept_since))
            return _own_events(window)

        # A create whose answer was lost made an event no link names yet: found by its
        # Coconut id, so that it is not imported back as the staff member's own busy time.
        for row in rows:
            if row.link.pending_create:
                try:
                    found = await self._calendar.find_events_for(user.id, row.item_key)
                except (Retryable, Permanent) as failure:
                    if is_mailbox_wide(failure):
                        raise
                    continue  # this item's own trouble: its row already says so
                for event in found:
                    own[event.id] = OwnEvent(row.item_key, None)
        own_events = OwnEvents(
            own, since=kept_since, look_up=look_up, window=read_window if incremental else None
        )

        async def before_writes() -> None:
            # Stored at once, before Coconut changes: a pass that fails (or a host that dies)
            # after the round's writes leaves the mark, and the next round is a full one.
            marked = StaffChanges(cursor=ImportCursor(unconfirmed_writes=True))
            await self._staff.merge(staff_id, marked)

        outcome = await self._importer.run(
            staff_id, user, cursor, own_events, full=full, before_writes=before_writes
        )
        drifted = {**outcome.drifted, **await self._unseen(staff_id, outcome)}
        if drifted:
            # Read after the rows, like the export: a change that lands meanwhile keeps its
            # row pending instead of being overwritten by an older state.
            fresh = await self._items.load(drifted)
            await self._writer.repair_drift(
                staff_id,
                user,
                [*rows, *window, *older],  # the last read of a row wins
                fresh,
                drifted,
                round_mark=outcome.cursor.round_mark,
            )
        if own_events.window is not None:
            # The window was not read: the count stays as the export left it.
            return StaffChanges(cursor=outcome.cursor)
        # Counted from the links themselves (the working window's events): exact whatever
        # passes ran before.
        counted = Outcome(event_count=len(own_events.current))
        return StaffChanges(cursor=outcome.cursor, outcome=counted)

    async def _read_listings(self, request: StaffSyncRequest, record: StaffRecord) -> StaffChanges:
        """Record the staff member's listings from Coconut (onboarding, or the scheduled
        repair); staff a reassignment touches get a sync of their own."""
        assert self._listings is not None
        staff_id = request.staff_id
        now = datetime.now(UTC)
        try:
            repair = await self._listings.reconcile(
                staff_id, end_after=listing_window_start(record, now, self._retention)
            )
        except UnknownCoconutUser:
            # Coconut has no such user (any more): nothing listed, so nothing to withdraw
            # either; the webhooks that named them stay the truth.
            return StaffChanges(listing=Listing(listed_at=now, due=False))
        others = repair.staff_to_sync - {staff_id}
        if others:
            await self._queue.request_sync(others, "reconcile")
        if request.reason != "reconcile" or record.listing.listed_at is None or record.listing.due:
            return StaffChanges(listing=Listing(listed_at=now, due=False))
        # A scheduled repair: what it mended are webhooks that never arrived.
        count_lost_webhooks_repaired(repair.created, repair.updated, repair.removed)
        mended = Listing(
            listed_at=now,
            due=False,
            repaired_at=now,
            created=repair.created,
            updated=repair.updated,
            removed=repair.removed,
        )
        return StaffChanges(listing=mended)

    async def _failing(
        self, staff_id: str, rows: list[StaffItemRow], export: ExportOutcome
    ) -> dict[str, ItemFailure]:
        """The items that keep failing, as the rows now say (read again only if any do)."""
        if not export.failed and not any(r.failure for r in rows):
            return {}
        now_rows = await self._links.failing(staff_id)
        return {r.item_key: r.failure for r in now_rows if r.failure is not None}

    async def _unseen(self, staff_id: str, outcome: ImportOutcome) -> dict[str, None]:
        """Own events a full round did not list although their items are in its window: gone
        while no round was watching, so to look at (as if delta had said `@removed`)."""
        if not outcome.unseen:
            return {}
        items = await self._items.load(outcome.unseen - outcome.drifted.keys())
        return {
            key: None
            for key, item in items.items()
            if item is not None
            and is_wanted_by(item, staff_id)
            and item.resource is not None
            and item.resource.end > outcome.window_start
        }

    async def _count_events(self, staff_id: str) -> int:
        """The staff member's events in the working window, as their links name them."""
        rows = await self._links.current(staff_id, self._kept_since(datetime.now(UTC)))
        return len(_own_events(rows))

    def _kept_since(self, now: datetime) -> datetime:
        """Items that ended before this are history: their content is gone or going
        (`sync.retention`), and a full pass or an import round reads only the rows of the
        others (older own events are looked up by event id when a round lists one)."""
        return oldest_listed_end(now, self._retention)

    async def _mailbox(self, staff_id: str, email: str, record: StaffRecord) -> MailboxUser | None:
        now = datetime.now(UTC)
        cached = cached_mailbox(record, email, now)
        if cached is not None:
            return cached
        user = await self._calendar.find_user(email)
        # Stored at once (not with the pass's outcome): a throttled pass keeps what it found.
        found = Mailbox(
            email=email,
            user_id=user.id if user else "",
            time_zone=user.time_zone if user else "",
            resolved_at=now,
        )
        await self._staff.merge(staff_id, StaffChanges(mailbox=found))
        return user

    def _log(
        self,
        request: StaffSyncRequest,
        report: RunReport,
        started: float,
        *,
        detail: str,
        graph_status: int | None,
    ) -> None:
        if report.outcome == "synced":
            _record_landed(request)
        export = report.export
        log_operation(
            log,
            f"staff {request.action} {report.outcome}",
            operation="staff_sync" if request.action == "sync" else f"staff_{request.action}",
            outcome=report.outcome,
            level=_LOG_LEVELS.get(report.outcome, logging.INFO),
            staff_id=request.staff_id,
            trigger=request.reason,
            full=request.full,
            attempt=request.attempt,
            graph_status=graph_status,
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            detail=detail or None,
            events_created=export.created if export else None,
            events_updated=export.updated if export else None,
            events_removed=export.removed if export else None,
        )


def _record_landed(request: StaffSyncRequest) -> None:
    """The change a synced run landed: how long since it was asked for (webhook -> Exchange,
    notification -> Coconut)."""
    if request.reason == "webhook":
        record_latency(WEBHOOK_TO_EXCHANGE_MS, _ms_since(request.requested_at), trigger="webhook")
    elif request.reason == "notification":
        record_latency(
            EXCHANGE_TO_COCONUT_MS, _ms_since(request.requested_at), trigger="notification"
        )


def _report(
    outcome: RunOutcome,
    status: RecordedStatus,
    reason: str,
    changes: StaffChanges | None = None,
    *,
    event_count: int | None = None,
    retry: dict[str, ItemFailure] | None = None,
) -> RunReport:
    """A pass that ended with a status other than Syncing (the run itself did not fail)."""
    recorded = Outcome(
        status=status, reason=reason, at=datetime.now(UTC), failures=0, failing_since=None
    )
    if event_count is not None:
        recorded = recorded.model_copy(update={"event_count": event_count})
    written = (changes or StaffChanges()).then(StaffChanges(outcome=recorded))
    return RunReport(outcome, written, retry_in=_soonest(retry or {}))


def _back_off(record: StaffRecord, transient: Retryable) -> tuple[float, StaffChanges]:
    """When to try a failed run again, and what to record. Throttling waits exactly as long as
    asked. Other transient failures (5xx, unreachable) wait longer each time, up to the
    timer's cadence, and once they have lasted `RUN_ERROR_AFTER` the status says so."""
    now = datetime.now(UTC)
    if transient.code == PACED:
        # The pacer's own wait: the retry comes back on the whole second before the window has
        # room (the queue counts in seconds) and waits out the rest in place, instead of
        # arriving up to a second late. Requests meanwhile are dropped until just before then.
        delay = float(math.floor(transient.delay))
        until = now + timedelta(seconds=max(0.0, delay - PACED_MARGIN_SECONDS))
        return delay, StaffChanges(outcome=Outcome(throttled_until=until, count_unsure=True))
    if transient.status == 429:
        until = now + timedelta(seconds=transient.delay)
        return transient.delay, StaffChanges(
            outcome=Outcome(throttled_until=until, count_unsure=True)
        )
    failures = record.outcome.failures + 1
    since = record.outcome.failing_since or now
    growing = RUN_BACKOFF_FIRST * 2 ** min(failures - 1, 16)
    delay = max(transient.delay, min(RUN_BACKOFF_CAP, growing))
    outcome = Outcome(
        throttled_until=now + timedelta(seconds=delay),
        failures=failures,
        failing_since=since,
        count_unsure=True,
    )
    if now - since >= RUN_ERROR_AFTER:
        reason = (
            f"{_SOURCES[transient.source]} has been failing since {since:%Y-%m-%d %H:%M} UTC "
            f"({transient}); retried every {RUN_BACKOFF_CAP / 60:.0f} minutes"
        )
        outcome = Outcome(
            status="Error",
            reason=reason,
            at=now,
            throttled_until=now + timedelta(seconds=delay),
            failures=failures,
            failing_since=since,
            count_unsure=True,
        )
    return delay, StaffChanges(outcome=outcome)


def _failing_reason(failing: dict[str, ItemFailure]) -> str:
    """Which items keep failing and why (Coconut ids and error codes only)."""
    first_key = min(failing, key=lambda key: failing[key].since)
    first = failing[first_key]
    others = f" and {len(failing) - 1} more" if len(failing) > 1 else ""
    return (
        f"{first_key}{others} could not be written since {first.since:%Y-%m-%d %H:%M} UTC "
        f"({first.reason}); retried on a growing back-off, the other items are in sync"
    )


def _soonest(failing: dict[str, ItemFailure]) -> float | None:
    if not failing:
        return None
    due = min(f.retry_at for f in failing.values())
    return max(1.0, (due - datetime.now(UTC)).total_seconds())


def _imports(request: StaffSyncRequest, record: StaffRecord) -> bool:
    """Whether this pass also reads Outlook (delta round, drift repair, subscription): on the
    triggers that stand for Outlook changes, and until the first round is done. A webhook's
    pass only writes the calendar: Outlook did not change."""
    return request.full or request.reason in IMPORT_TRIGGERS or not record.cursor.delta_link


def _reads_listings(request: StaffSyncRequest, record: StaffRecord) -> bool:
    """The staff member's first sync, calendar sync turned back on or a reconnect (`due`), an
    operator's resync, or the scheduled repair."""
    return (
        request.full
        or request.reason == "reconcile"
        or record.listing.listed_at is None
        or record.listing.due
    )


def listing_window_start(record: StaffRecord, now: datetime, retention: timedelta) -> datetime:
    """The items onboarding and the scheduled repair read from Coconut end after this: the
    calendar's initialisation minus one day (as the import), but never further back than the
    content retention: a listing that reached further back would bring purged content back
    (`sync.retention`)."""
    initialised = record.cursor.initialised_at or now
    return max(initialised - timedelta(days=1), oldest_listed_end(now, retention))


def _own_events(rows: list[StaffItemRow]) -> dict[str, OwnEvent]:
    """The events the export wrote, by Graph event id, as the rows name them."""
    return {
        row.link.event_id: OwnEvent(
            row.item_key, row.link.change_key, row.link.written_after, ends=row.ends
        )
        for row in rows
        if row.link.event_id
    }


def _ms_since(moment: datetime) -> float:
    return (datetime.now(UTC) - moment).total_seconds() * 1000


def _special(request: StaffSyncRequest) -> bool:
    """A request for more than a plain pass: not folded into another run, never dropped."""
    return request.action != "sync" or request.full or request.reason == "reconcile"


def _coalesced_while_throttled(request: StaffSyncRequest, record: StaffRecord) -> bool:
    """While Graph throttles the mailbox a retry is already on the queue for the end of the wait;
    plain sync requests arriving before then add nothing to it (the work they stand for is in
    storage: pending rows and the delta link) and are dropped."""
    if _special(request):
        return False
    until = record.outcome.throttled_until
    return until is not None and until > datetime.now(UTC)


def _staff_email(
    staff_id: str, items: dict[str, DesiredItem | None], record: StaffRecord
) -> str | None:
    """The staff member's Coconut e-mail: from the newest item that names it, else the record."""
    newest = None
    for item in items.values():
        if (
            item is not None
            and staff_id in item.staff_emails
            and (newest is None or item.revision >= newest.revision)
        ):
            newest = item
    if newest is not None:
        return newest.staff_emails[staff_id]
    return record.roster.email or None
