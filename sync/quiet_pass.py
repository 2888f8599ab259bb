"""A timer pass for a staff member with nothing to do, made without taking their lease.

Most of a bank's timer passes find nothing: no row waiting, an empty delta page, a subscription
good for days. Under the lease such a pass costs two writes of the staff record (take, then give
back with the outcome). Here it costs one: the record as this process last gave it back is read
from memory, the pass looks (the rows waiting for a run, one delta page), and if it found nothing
it stores the new delta link and the outcome by compare-and-swap against that record's ETag.

It reads the waiting rows only, never the working window's: a staff member with a hundred
appointments ahead made every quiet pass read and decode a hundred rows (22.5 ms of CPU per pass
against 4.4 ms with one). The count of events kept in the calendar stays as the last pass left
it; the next pass with work recounts or adjusts it.

It writes nothing else, so it needs no lease: Graph and Coconut are only read, and the swap
fails if anyone wrote the record since (every lease taken or given back changes its ETag).
Whatever is not quiet (a waiting row, a delta page that lists anything, a full round or a
subscription renewal due, a status that is not plain Syncing, a record this process did not
give back last) returns None, and the worker makes the regular pass under the lease; it reads
the delta round again from the same stored link, which the look here did not move.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sync.errors import ConcurrentUpdate, SyncError
from sync.imports.delta_import import BusyTimeImporter
from sync.lease import StaffLease, is_held
from sync.mailbox_cache import cached_mailbox
from sync.notifications.subscriptions import is_current
from sync.ports import ItemLinks, MailboxUser, StaffStore
from sync.staff_record import Outcome, StaffChanges, StaffRecord
from sync.timezones import zone_note
from sync.work import StaffSyncRequest


class QuietPass:
    def __init__(
        self,
        *,
        staff: StaffStore,
        lease: StaffLease,
        links: ItemLinks,
        importer: BusyTimeImporter,
        subscribes: bool,
    ) -> None:
        self._staff = staff
        self._lease = lease
        self._links = links
        self._importer = importer
        self._subscribes = subscribes

    async def run(self, request: StaffSyncRequest) -> StaffChanges | None:
        """The changes stored if the pass was quiet; None if the regular pass must run."""
        if request.reason != "timer" or request.action != "sync" or request.full:
            return None
        record = self._lease.given_back(request.staff_id)
        now = datetime.now(UTC)
        user = _quiet_candidate(record, now, subscribes=self._subscribes)
        if record is None or user is None:
            return None
        try:
            return await self._look(request.staff_id, record, user, now)
        except SyncError:
            return None  # the regular pass meets it again and deals with it (retry, full round)

    async def _look(
        self,
        staff_id: str,
        record: StaffRecord,
        user: MailboxUser,
        now: datetime,
    ) -> StaffChanges | None:
        if await self._links.pending(staff_id):
            return None
        cursor = await self._importer.quiet_round(user, record.cursor)
        if cursor is None:
            return None
        synced = Outcome.synced(
            now,
            reason=zone_note(user.time_zone),
            event_count=record.outcome.event_count,
        )
        changes = StaffChanges(cursor=cursor, outcome=synced)
        try:
            etag = await self._staff.merge(staff_id, changes, if_match=record.etag)
        except ConcurrentUpdate:
            return None  # written meanwhile: the regular pass reads it as it stands
        self._lease.wrote(record.with_changes(changes, etag))
        return changes


def _quiet_candidate(
    record: StaffRecord | None, now: datetime, *, subscribes: bool
) -> MailboxUser | None:
    """The mailbox, if the record says a pass has nothing but a look to do: synced and
    healthy, free, its listings read, its mailbox known, an incremental round to make and
    its subscription current."""
    if record is None or is_held(record) or record.rerun.requested:
        return None
    outcome = record.outcome
    if outcome.status != "Syncing" or outcome.failures or outcome.count_unsure:
        return None
    if outcome.throttled_until is not None and outcome.throttled_until > now:
        return None
    if record.connection.disconnected or record.roster.calendar_sync is not True:
        return None
    if record.listing.listed_at is None or record.listing.due:
        return None
    user = cached_mailbox(record, record.roster.email, now) if record.roster.email else None
    if user is None or user.id != record.mailbox.user_id:
        return None
    if outcome.reason != zone_note(user.time_zone):  # e.g. items failing
        return None
    if subscribes and not is_current(record.subscription, user.id, now):
        return None
    return user
