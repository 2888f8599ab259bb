"""The queue worker's job: bring one staff member in step, under their lease.

One run: take the staff member's lease (so one worker owns a mailbox at a time), find their
Microsoft 365 mailbox (cached in the staff record with its time zone), reconcile the calendar
with Coconut's desired state, import the staff member's busy time, and record the outcome as the
staff member's status.

Requests that find the mailbox busy are folded into the holder's run (it makes one more pass
before letting go), with a wake-up at the lease's end in case the holder died. Throttling puts
one retry on the queue for when Graph allows again, and drops plain requests until then, rather
than holding a worker asleep or multiplying messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sync.coconut.api import CoconutError, CoconutUnavailable
from sync.export.reconcile import CalendarReconciler, ExportOutcome, load_items
from sync.graph.errors import AccessDenied, GraphFailure, RetryLater
from sync.graph.mailboxes import MailboxUser, StaffMailboxes
from sync.imports.reconcile import BusyTimeImporter, ImportState, OwnEvent
from sync.notifications.subscriptions import MailboxSubscriptions
from sync.ops.disconnect import StaffDisconnect
from sync.storage.desired_items import DesiredItemStore
from sync.storage.staff_items import StaffItemStore
from sync.storage.staff_records import LeaseHeld, StaffRecord, StaffRecords
from sync.storage.work_queue import WorkQueue
from sync.telemetry import (
    EXCHANGE_TO_COCONUT_MS,
    WEBHOOK_TO_EXCHANGE_MS,
    log_operation,
    record_latency,
    record_queue_age,
    staff_context,
)
from sync.work import StaffSyncRequest

log = logging.getLogger("sync.staff")

# Short, and renewed while a run lasts: a worker that dies blocks its mailbox for at most this.
LEASE_DURATION = timedelta(seconds=60)
LEASE_RENEW_SECONDS = 20
# Passes one run makes for sync requests that arrived while it held the lease.
MAX_PASSES = 5
# A full or disconnect request that finds the mailbox busy tries again after this long.
SPECIAL_RETRY_SECONDS = 3
# How long a resolved mailbox (user id + time zone) is trusted before asking Graph again.
MAILBOX_CACHE = timedelta(hours=12)
WORKER_ID = f"worker-{uuid.uuid4().hex[:12]}"

RunOutcome = Literal["synced", "warning", "error", "deferred", "disconnected", "disabled"]
# Requests sent without a delay: their time in the queue is the queue's own backlog.
UNDELAYED_TRIGGERS = frozenset({"webhook", "notification", "ops"})
# Severity of a run's record (the workbook counts severity >= Error per staff member).
_LOG_LEVELS = {"failed": logging.ERROR, "error": logging.ERROR, "warning": logging.WARNING}


@dataclass(frozen=True)
class SyncResult:
    outcome: RunOutcome
    export: ExportOutcome | None = None
    retry_after: float | None = None


class StaffSync:
    def __init__(
        self,
        *,
        records: StaffRecords,
        items: DesiredItemStore,
        staff_items: StaffItemStore,
        mailboxes: StaffMailboxes,
        queue: WorkQueue,
        importer: BusyTimeImporter | None = None,
        subscriptions: MailboxSubscriptions | None = None,
        disconnect: StaffDisconnect | None = None,
    ) -> None:
        self._records = records
        self._items = items
        self._staff_items = staff_items
        self._mailboxes = mailboxes
        self._queue = queue
        self._importer = importer
        self._subscriptions = subscriptions
        self._disconnect = disconnect
        self._calendar = CalendarReconciler(items, staff_items, mailboxes)

    async def run(self, request: StaffSyncRequest) -> SyncResult:
        with staff_context(request.staff_id):
            return await self._run(request)

    async def _run(self, request: StaffSyncRequest) -> SyncResult:
        staff_id = request.staff_id
        started = time.monotonic()
        if request.attempt == 0 and request.reason in UNDELAYED_TRIGGERS:
            record_queue_age(_ms_since(request.requested_at), trigger=request.reason)
        # One owner token per run: two messages for the same staff member in one process must
        # not both hold the mailbox.
        owner = f"{WORKER_ID}-{uuid.uuid4().hex[:8]}"
        try:
            record: StaffRecord | None = await self._records.acquire_lease(
                staff_id, owner, LEASE_DURATION
            )
        except LeaseHeld as held:
            await self._defer_while_leased(request, held.until)
            self._log(request, "deferred", started, reason="lease held")
            return SyncResult("deferred")
        if record is not None and _coalesced_while_throttled(request, record):
            await self._records.force_release(staff_id, owner, {})
            self._log(request, "deferred", started, reason="retry already scheduled")
            return SyncResult("deferred")
        renewal = asyncio.create_task(self._keep_lease(staff_id, owner))
        status: dict[str, Any] = {}
        released = False
        try:
            current = request
            for _ in range(MAX_PASSES):
                result, latest = await self._run_leased(current, record)
                record = None  # later passes read it afresh
                # Later passes add to what earlier ones found (a disconnect's outcome stays).
                status = {**status, **latest}
                if await self._records.release_lease(staff_id, owner, status):
                    released = True
                    break
                # Someone asked for a sync while this one ran: one more (incremental) pass.
                current = request.model_copy(update={"full": False, "action": "sync"})
            else:
                await self._queue.send(request.retried())
        except RetryLater as throttled:
            until = datetime.now(UTC) + timedelta(seconds=throttled.delay)
            status = {**status, "ThrottledUntil": until}
            await self._queue.send(request.retried(), delay_seconds=throttled.delay)
            self._log(request, "deferred", started, graph_status=throttled.status)
            return SyncResult("deferred", retry_after=throttled.delay)
        finally:
            renewal.cancel()
            if not released:
                await self._records.force_release(staff_id, owner, status)
        self._log(request, result.outcome, started, export=result.export)
        return result

    async def _defer_while_leased(self, request: StaffSyncRequest, until: datetime) -> None:
        """The holder makes one more pass before letting go; a wake-up at the lease's end covers
        a holder that died. Full and disconnect requests (rare, and not what a plain pass does)
        keep their own message and try again shortly."""
        if request.action != "sync" or request.full:
            await self._queue.send(request.retried(), delay_seconds=SPECIAL_RETRY_SECONDS)
            return
        wake = max(until, datetime.now(UTC)) + timedelta(seconds=1)
        delay = (wake - datetime.now(UTC)).total_seconds()
        if await self._records.request_rerun(request.staff_id, wake):
            await self._queue.send(request.retried(), delay_seconds=delay)

    async def _keep_lease(self, staff_id: str, owner: str) -> None:
        """Extend the lease while a long run (a backlog, a full resync) is under way."""
        while True:
            await asyncio.sleep(LEASE_RENEW_SECONDS)
            # A swap can lose to another write of the record (a rerun request): try again at
            # once rather than let the lease run out under a live run.
            for _ in range(20):
                try:
                    await self._records.acquire_lease(staff_id, owner, LEASE_DURATION)
                    break
                except LeaseHeld:
                    await asyncio.sleep(0.1)

    async def _run_leased(
        self, request: StaffSyncRequest, record: StaffRecord | None
    ) -> tuple[SyncResult, dict[str, Any]]:
        staff_id = request.staff_id
        if record is None:
            record = await self._records.get(staff_id)
        if request.action == "disconnect":
            # Only while still wanted: a reconnect since the request cancels it.
            if record is None or not record.get("Disconnected") or self._disconnect is None:
                return SyncResult("disconnected"), {}
            return SyncResult("disconnected"), await self._disconnect.run(staff_id, record)
        if record is not None and record.get("Disconnected", False):
            return SyncResult("disconnected"), {}
        if record is not None and record.get("CalendarSync") is False:
            return SyncResult("disabled"), _status(
                "Disabled",
                "calendar sync is off for this staff member in Coconut",
                datetime.now(UTC),
            )
        rows = await self._staff_items.rows(staff_id)
        work = [r for r in rows if request.full or r.pending or r.link.pending_create]
        items = await load_items(self._items, [r.item_key for r in work])
        email = _staff_email(staff_id, items, record)
        now = datetime.now(UTC)
        if email is None:
            return SyncResult("warning"), _status(
                "Warning", "no e-mail address known for this staff member yet", now
            )
        try:
            user = await self._mailbox(staff_id, email, record, now)
        except AccessDenied as denied:
            return SyncResult("error"), _status("Error", _denied_reason(denied), now)
        if user is None:
            return SyncResult("warning"), {
                **_status(
                    "Warning", "no Microsoft 365 user has this staff member's e-mail as mail", now
                ),
                "Email": email,
                "UserId": "",
            }
        fields: dict[str, Any] = {"Email": email}
        try:
            export = await self._calendar.reconcile(
                staff_id, user, work, items, check_drift=request.full
            )
            fields["EventCount"] = (
                export.events if request.full else record_event_count(record, export)
            )
            if self._importer is not None:
                fields.update(await self._import(staff_id, user, record, full=request.full))
            if self._subscriptions is not None:
                fields.update(await self._subscribe(staff_id, user, record))
        except AccessDenied as denied:
            return SyncResult("error"), {**fields, **_status("Error", _denied_reason(denied), now)}
        except GraphFailure as failure:
            if isinstance(failure, RetryLater):
                raise
            return SyncResult("error"), {**fields, **_status("Error", str(failure), now)}
        except CoconutUnavailable as unavailable:
            raise RetryLater(unavailable.retry_after or 30.0, unavailable.status) from None
        except CoconutError as refused:
            # 4xx from Coconut: recorded for the administrator; the export part still stands.
            return SyncResult("error"), {**fields, **_status("Error", str(refused), now)}
        return SyncResult("synced", export), {
            **fields,
            **_status("Syncing", "", now),
            "LastSyncAt": now,
        }

    async def _subscribe(
        self, staff_id: str, user: MailboxUser, record: StaffRecord | None
    ) -> dict[str, Any]:
        """Keep the mailbox's change-notification subscription alive; the timer is the safety
        net, so a refused subscription is noted but does not fail the sync."""
        assert self._subscriptions is not None
        try:
            fields = await self._subscriptions.ensure(staff_id, user.id, record)
        except RetryLater:
            raise
        except GraphFailure as failure:
            return {"SubscriptionError": str(failure)}
        return {**fields, "SubscriptionError": ""} if fields else {}

    async def _import(
        self,
        staff_id: str,
        user: MailboxUser,
        record: StaffRecord | None,
        *,
        full: bool,
    ) -> dict[str, Any]:
        """Outlook busy time into Coconut; Outlook edits of Coconut-owned events are repaired."""
        assert self._importer is not None
        rows = await self._staff_items.rows(staff_id)  # links as the export left them
        own = {
            row.link.event_id: OwnEvent(row.item_key, row.link.change_key)
            for row in rows
            if row.link.event_id
        }
        state = ImportState(
            initialised_at=record.get("InitialisedAt") if record else None,
            delta_link=(record.get("DeltaLink") or None) if record else None,
            round_started_at=record.get("RoundStartedAt") if record else None,
        )
        outcome = await self._importer.run(staff_id, user, state, own, full=full)
        if outcome.drifted:
            # Read after the rows, like the export: a change that lands meanwhile keeps its
            # row pending instead of being overwritten by an older state.
            fresh = await load_items(self._items, list(outcome.drifted))
            await self._calendar.repair_drift(staff_id, user, rows, fresh, outcome.drifted)
        return {
            # Counted from the links themselves: exact whatever passes ran before.
            "EventCount": len(own),
            "InitialisedAt": outcome.state.initialised_at,
            "DeltaLink": outcome.state.delta_link or "",
            "RoundStartedAt": outcome.state.round_started_at,
            "LastImportAt": datetime.now(UTC),
        }

    async def _mailbox(
        self, staff_id: str, email: str, record: StaffRecord | None, now: datetime
    ) -> MailboxUser | None:
        if record is not None:
            cached_at = record.get("ResolvedAt")
            user_id = record.get("UserId") or ""
            same_email = (record.get("Email") or "").casefold() == email.casefold()
            if user_id and same_email and cached_at and now - cached_at < MAILBOX_CACHE:
                return MailboxUser(user_id, record.get("TimeZone") or "UTC")
        user = await self._mailboxes.find_user(email)
        fields: dict[str, Any] = {"Email": email, "ResolvedAt": now}
        fields.update({"UserId": user.id, "TimeZone": user.time_zone} if user else {"UserId": ""})
        await self._records.merge(staff_id, fields)
        return user

    def _log(
        self,
        request: StaffSyncRequest,
        outcome: str,
        started: float,
        *,
        reason: str = "",
        graph_status: int | None = None,
        export: ExportOutcome | None = None,
    ) -> None:
        if outcome == "synced" and request.reason == "webhook":
            record_latency(
                WEBHOOK_TO_EXCHANGE_MS, _ms_since(request.requested_at), trigger="webhook"
            )
        if outcome == "synced" and request.reason == "notification":
            record_latency(
                EXCHANGE_TO_COCONUT_MS, _ms_since(request.requested_at), trigger="notification"
            )
        log_operation(
            log,
            f"staff {request.action} {outcome}",
            operation="staff_sync" if request.action == "sync" else f"staff_{request.action}",
            outcome=outcome,
            level=_LOG_LEVELS.get(outcome, logging.INFO),
            staff_id=request.staff_id,
            trigger=request.reason,
            full=request.full,
            attempt=request.attempt,
            graph_status=graph_status,
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            detail=reason or None,
            events_created=export.created if export else None,
            events_updated=export.updated if export else None,
            events_removed=export.removed if export else None,
        )


def _ms_since(moment: datetime) -> float:
    return (datetime.now(UTC) - moment).total_seconds() * 1000


def _coalesced_while_throttled(request: StaffSyncRequest, record: StaffRecord) -> bool:
    """While Graph throttles the mailbox a retry is already on the queue for the end of the wait;
    plain sync requests arriving before then add nothing to it (the work they stand for is in
    storage: pending rows and the delta link) and are dropped."""
    if request.action != "sync" or request.full:
        return False
    until = record.get("ThrottledUntil")
    return until is not None and until > datetime.now(UTC)


def record_event_count(record: StaffRecord | None, export: ExportOutcome) -> int:
    previous = int(record.get("EventCount", 0) or 0) if record else 0
    return max(0, previous + export.created - export.removed)


def _status(status: str, reason: str, now: datetime) -> dict[str, Any]:
    return {"Status": status, "Reason": reason, "StatusAt": now}


def _denied_reason(denied: AccessDenied) -> str:
    code = denied.code or "ErrorAccessDenied"
    return (
        f"Graph denied access to the mailbox ({denied.status} {code}): check the app's "
        "Exchange RBAC management scope"
    )


def _staff_email(staff_id: str, items: dict[str, Any], record: StaffRecord | None) -> str | None:
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
        return str(newest.staff_emails[staff_id])
    email = record.get("Email") if record else None
    return str(email) if email else None
