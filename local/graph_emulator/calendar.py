"""One mailbox's events: create, read, update, delete (to Deleted Items), move between
calendars, and expand recurring series.

Recurring series follow Exchange's model: a series master, derived occurrences (not stored),
exceptions (an edited occurrence, stored with the occurrence's id) and cancelled occurrences
(original starts remembered on the master).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from local.graph_emulator.errors import GraphError, duplicate_transaction, item_not_found
from local.graph_emulator.folders import Folder, MailboxFolders
from local.graph_emulator.model import (
    ExtendedProperty,
    StoredEvent,
    new_change_key,
    new_event_id,
    new_ical_uid,
    occurrence_id,
    parse_occurrence_id,
)
from local.graph_emulator.odata import normalize_property_id
from local.graph_emulator.recurrence import occurrence_starts
from local.graph_emulator.timezones import parse_date_time_time_zone, zone_for
from local.graph_emulator.transactions import TransactionLedger, fingerprint

# Properties Graph computes; a client that sends them is ignored rather than obeyed.
READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "iCalUId",
        "type",
        "seriesMasterId",
        "webLink",
        "bodyPreview",
        "isOrganizer",
        "organizer",
        "hasAttachments",
        "onlineMeetingUrl",
        "responseStatus",
        "originalStart",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "isCancelled",
        "isDraft",
        "cancelledOccurrences",
        "onlineMeeting",
        "uid",
    }
)
# Stored apart from `fields` because they need interpretation.
_STRUCTURED = frozenset(
    {
        "start",
        "end",
        "body",
        "singleValueExtendedProperties",
        "multiValueExtendedProperties",
        "transactionId",
    }
)

TRANSACTION_RETURN_ORIGINAL = "returnOriginal"
TRANSACTION_CREATE_NEW = "createNew"


@dataclass(frozen=True)
class Change:
    """What a write did, for change notifications: `created`, `updated` or `deleted`."""

    change_type: str
    event_id: str
    etag: str


class MailboxStore:
    """The events of one mailbox: its calendars and Deleted Items. Ids are immutable and unique in
    the mailbox, so `/events/{id}` finds an item in any folder. Writes that touch the primary
    calendar queue a `Change` (what subscriptions on `users/{id}/events` hear about), which the
    state takes with `take_changes`. Not thread-safe: the state holds the lock."""

    def __init__(self, mailbox: str, clock: Callable[[], datetime]) -> None:
        self.mailbox = mailbox
        self._clock = clock
        self.folders = MailboxFolders()
        self._events: dict[str, StoredEvent] = {}
        self._transactions = TransactionLedger()
        self._changes: list[Change] = []

    @property
    def primary(self) -> Folder:
        return self.folders.primary

    @property
    def deleted_items(self) -> Folder:
        return self.folders.deleted_items

    # ----- reads -----

    def stored(self, folder: str | None = None) -> list[StoredEvent]:
        """Every stored item of one folder (default: the primary calendar): single instances,
        series masters and exceptions."""
        key = folder or self.primary.id
        found = [ev for ev in self._events.values() if ev.folder == key]
        return sorted(found, key=lambda ev: (ev.created, ev.id))

    def stored_everywhere(self) -> list[StoredEvent]:
        return sorted(self._events.values(), key=lambda ev: (ev.created, ev.id))

    def items(self, folder: str | None = None) -> list[StoredEvent]:
        """What `GET /events` lists: the single instances and series masters of one calendar
        (default: the primary one; `/users/{id}/events` never lists other folders)."""
        return [ev for ev in self.stored(folder) if ev.kind in ("singleInstance", "seriesMaster")]

    def get(self, event_id: str, folder: str | None = None) -> StoredEvent:
        """An item by id, in any folder unless `folder` is given (`/calendar/events/{id}` and
        `/calendars/{id}/events/{id}` see only their own calendar)."""
        event = self._find(event_id)
        if event is None or (folder is not None and event.folder != folder):
            raise item_not_found()
        return event

    def folder_of(self, event: StoredEvent) -> Folder:
        return self.folders.by_id(event.folder)

    def _find(self, event_id: str) -> StoredEvent | None:
        event = self._events.get(event_id)
        if event is not None:
            return event
        parsed = parse_occurrence_id(event_id)
        if parsed is not None:
            master = self._events.get(parsed[0])
            if master is not None and master.kind == "seriesMaster":
                for occurrence in self._occurrences(master, parsed[1], parsed[1] + timedelta(1)):
                    if occurrence.id == event_id:
                        return occurrence
        return None

    def view(self, start: datetime, end: datetime, folder: str | None = None) -> list[StoredEvent]:
        """Every instance of one calendar (default: the primary one) overlapping [start, end):
        what `calendarView` returns."""
        key = folder or self.primary.id
        found: list[StoredEvent] = []
        for event in self._events.values():
            if event.folder != key:
                continue
            if event.kind == "seriesMaster":
                found.extend(
                    occ
                    for occ in self._occurrences(master=event, start=start, end=end)
                    if occ.start < end and occ.end > start
                )
            elif event.kind == "singleInstance" and event.start < end and event.end > start:
                found.append(event)  # exceptions come with their series, above
        return sorted(found, key=lambda ev: (ev.start, ev.end, ev.id))

    def instances(
        self, master_id: str, start: datetime, end: datetime, folder: str | None = None
    ) -> list[StoredEvent]:
        master = self.get(master_id, folder)
        if master.kind != "seriesMaster":
            return [master] if master.start < end and master.end > start else []
        return [
            ev for ev in self.view(start, end, master.folder) if ev.series_master_id == master.id
        ]

    def _occurrences(
        self, master: StoredEvent, start: datetime, end: datetime
    ) -> list[StoredEvent]:
        """Occurrences and exceptions of a series whose instance could overlap [start, end)."""
        recurrence = master.recurrence or {}
        zone_name = (recurrence.get("range") or {}).get("recurrenceTimeZone") or master.start_zone
        zone = zone_for(zone_name) or UTC
        duration = master.end - master.start
        series_start = master.start.astimezone(zone)
        exceptions = {
            ev.original_start: ev
            for ev in self._events.values()
            if ev.kind == "exception" and ev.series_master_id == master.id
        }
        # Exceptions may have moved far from their original slot: look them up by their own times.
        out = [ev for ev in exceptions.values() if ev.start < end and ev.end > start]
        try:
            starts = occurrence_starts(recurrence, series_start, start - duration, end)
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphError(400, "ErrorInvalidRequest", "The recurrence is not valid.") from exc
        for local_start in starts:
            original = local_start.astimezone(UTC)
            if original in master.cancelled_starts or original in exceptions:
                continue
            out.append(
                replace(
                    master,
                    id=occurrence_id(master.id, original),
                    kind="occurrence",
                    start=original,
                    end=(local_start + duration).astimezone(UTC),
                    series_master_id=master.id,
                    original_start=original,
                    ical_uid=f"{master.ical_uid}{original.strftime('%Y%m%d')}",
                    cancelled_starts=set(),
                )
            )
        return out

    def take_changes(self) -> list[Change]:
        changes, self._changes = self._changes, []
        return changes

    # ----- writes -----

    def create(
        self, body: Mapping[str, Any], transaction_policy: str, folder: str | None = None
    ) -> tuple[StoredEvent, bool]:
        """(event, created?): a repeated `transactionId` answers with the original instead, or
        with 400 `ErrorDuplicateTransactionId` when the body describes a different event."""
        transaction_id = body.get("transactionId")
        transaction_id = transaction_id if isinstance(transaction_id, str) else None
        body_fingerprint = fingerprint(body)
        if transaction_id:
            binding = self._transactions.find(transaction_id)
            if binding is not None:
                original = binding.event
                in_calendar = (
                    original.id in self._events and original.folder != self.deleted_items.id
                )
                if in_calendar or transaction_policy == TRANSACTION_RETURN_ORIGINAL:
                    if binding.fingerprint != body_fingerprint:
                        raise duplicate_transaction()
                    return original, False
        if "start" not in body or "end" not in body:
            raise GraphError(400, "ErrorInvalidRequest", "An event needs both 'start' and 'end'.")
        now = self._clock()
        event = StoredEvent(
            id=new_event_id(),
            mailbox=self.mailbox,
            kind="singleInstance",
            start=now,
            end=now,
            start_zone="UTC",
            end_zone="UTC",
            fields={},
            body_type="html",
            body_content="",
            single_properties={},
            multi_properties={},
            transaction_id=transaction_id,
            created=now,
            modified=now,
            change_key=new_change_key(),
            ical_uid=new_ical_uid(),
            folder=folder or self.primary.id,
        )
        self._apply(event, body, creating=True)
        self._events[event.id] = event
        if transaction_id:
            self._transactions.bind(transaction_id, event, body_fingerprint)
        self._record("created", event)
        return event, True

    def update(
        self,
        event_id: str,
        body: Mapping[str, Any],
        if_match: str | None,
        folder: str | None = None,
    ) -> StoredEvent:
        event = self.get(event_id, folder)
        _check_etag(event, if_match)
        if event.kind == "occurrence":
            event = self._materialise_exception(event)
        elif event.kind == "seriesMaster" and _changes_series(event, body):
            self._drop_exceptions(event)
        self._apply(event, body, creating=False)
        event.change_key = new_change_key()
        event.modified = self._clock()
        if event.kind == "exception":
            self._touch_master(event)
            # A change to an occurrence is reported on its series master.
            self._record("updated", self._events.get(event.series_master_id or "", event))
        else:
            self._record("updated", event)
        return event

    def delete(self, event_id: str, if_match: str | None, folder: str | None = None) -> StoredEvent:
        """Graph's DELETE, and a person's delete in Outlook: the item moves to Deleted Items
        (its id keeps resolving there); an occurrence or exception is cancelled on its series;
        an item already in Deleted Items is removed for good."""
        event = self.get(event_id, folder)
        _check_etag(event, if_match)
        if event.kind in ("occurrence", "exception"):
            return self._cancel_occurrence(event)
        if event.folder == self.deleted_items.id:
            self._purge(event)
            return event
        self._move(event, self.deleted_items.id)
        return event

    def permanent_delete(self, event_id: str, folder: str | None = None) -> StoredEvent:
        """`permanentDelete`: gone from every folder; its id answers 404 from now on."""
        event = self.get(event_id, folder)
        if event.kind in ("occurrence", "exception"):
            return self._cancel_occurrence(event)
        self._purge(event)
        return event

    def move(self, event_id: str, folder_id: str) -> StoredEvent:
        """A person moving an event (a whole series) to another folder of the mailbox."""
        event = self.get(event_id)
        if event.kind in ("occurrence", "exception"):
            raise GraphError(
                400, "ErrorInvalidRequest", "An occurrence moves only with its whole series."
            )
        self._move(event, self.folders.by_id(folder_id).id)
        return event

    def _cancel_occurrence(self, event: StoredEvent) -> StoredEvent:
        master = self._events[event.series_master_id or ""]
        self._events.pop(event.id, None)
        if event.original_start is not None:
            master.cancelled_starts.add(event.original_start)
        self._touch_master(event)
        self._record("updated", master)
        return master

    def _move(self, event: StoredEvent, folder_id: str) -> None:
        """Move an item (a series with its exceptions) between folders; the primary calendar's
        subscribers see it leave as `deleted` or arrive as `created`."""
        before = event.folder
        if before == folder_id:
            return
        for item in [event, *self._exceptions_of(event)]:
            item.folder = folder_id
        event.change_key = new_change_key()
        event.modified = self._clock()
        if before == self.primary.id:
            self._record("deleted", event, folder=before)
        else:
            self._record("created", event)

    def _purge(self, event: StoredEvent) -> None:
        before = event.folder
        for item in [event, *self._exceptions_of(event)]:
            self._events.pop(item.id, None)
        self._record("deleted", event, folder=before)

    def _exceptions_of(self, event: StoredEvent) -> list[StoredEvent]:
        if event.kind != "seriesMaster":
            return []
        return [
            ev
            for ev in self._events.values()
            if ev.kind == "exception" and ev.series_master_id == event.id
        ]

    def _record(self, change_type: str, event: StoredEvent, folder: str | None = None) -> None:
        if (folder or event.folder) == self.primary.id:
            self._changes.append(Change(change_type, event.id, event.etag))

    # ----- helpers -----

    def _check_recurrence(self, master: StoredEvent) -> None:
        """Reject a pattern the expansion cannot follow now, not at the next calendarView."""
        self._occurrences(master, master.start, master.start + timedelta(days=1))

    def _materialise_exception(self, occurrence: StoredEvent) -> StoredEvent:
        exception = replace(
            occurrence,
            kind="exception",
            fields=copy.deepcopy({k: v for k, v in occurrence.fields.items() if k != "recurrence"}),
            single_properties=copy.deepcopy(occurrence.single_properties),
            multi_properties=copy.deepcopy(occurrence.multi_properties),
            created=self._clock(),
            cancelled_starts=set(),
        )
        self._events[exception.id] = exception
        return exception

    def _touch_master(self, instance: StoredEvent) -> None:
        master = self._events.get(instance.series_master_id or "")
        if master is not None:
            master.change_key = new_change_key()
            master.modified = self._clock()

    def _drop_exceptions(self, master: StoredEvent) -> None:
        for event in list(self._events.values()):
            if event.kind == "exception" and event.series_master_id == master.id:
                del self._events[event.id]
        master.cancelled_starts.clear()

    def _apply(self, event: StoredEvent, body: Mapping[str, Any], *, creating: bool) -> None:
        if (
            not creating
            and "transactionId" in body
            and body["transactionId"] != event.transaction_id
        ):
            raise GraphError(
                400,
                "ErrorInvalidPropertyUpdateSentToServer",
                "transactionId cannot be changed.",
            )
        if "recurrence" in body and event.kind in ("occurrence", "exception"):
            raise GraphError(
                400, "ErrorInvalidRequest", "An occurrence of a series cannot have a recurrence."
            )
        start, start_zone = event.start, event.start_zone
        end, end_zone = event.end, event.end_zone
        if isinstance(body.get("start"), Mapping):
            start, start_zone = parse_date_time_time_zone(body["start"], "start")
        if isinstance(body.get("end"), Mapping):
            end, end_zone = parse_date_time_time_zone(body["end"], "end")
        if end < start:
            raise GraphError(
                400,
                "ErrorCalendarEndDateIsEarlierThanStartDate",
                "The end date occurs before the start date.",
            )
        fields = dict(event.fields)
        for key, value in body.items():
            if key.startswith("@") or "@odata." in key or key in READ_ONLY or key in _STRUCTURED:
                continue
            fields[key] = copy.deepcopy(value)
        if fields.get("isAllDay"):
            _check_all_day(start, start_zone, end, end_zone)
        event.start, event.start_zone, event.end, event.end_zone = start, start_zone, end, end_zone
        event.fields = fields
        if event.kind in ("singleInstance", "seriesMaster"):
            event.kind = "seriesMaster" if fields.get("recurrence") else "singleInstance"
        body_value = body.get("body")
        if isinstance(body_value, Mapping):
            event.body_type = str(body_value.get("contentType") or "text").lower()
            event.body_content = str(body_value.get("content") or "")
        elif "body" in body and body_value is None:
            event.body_type, event.body_content = "html", ""
        if event.kind == "seriesMaster":
            self._check_recurrence(event)
        _merge_properties(event.single_properties, body.get("singleValueExtendedProperties"))
        _merge_properties(event.multi_properties, body.get("multiValueExtendedProperties"))


def _merge_properties(target: dict[str, ExtendedProperty], value: Any) -> None:
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            key = normalize_property_id(item["id"])
            existing = target.get(key)
            target[key] = ExtendedProperty(
                id=existing.id if existing else item["id"], value=copy.deepcopy(item.get("value"))
            )


def _changes_series(master: StoredEvent, body: Mapping[str, Any]) -> bool:
    """Exchange drops a series' exceptions when its pattern or its times change."""
    if "recurrence" in body and body["recurrence"] != master.recurrence:
        return True
    return "start" in body or "end" in body


def _check_etag(event: StoredEvent, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    given = if_match.strip()
    if given.startswith("W/"):
        given = given[2:]
    if given.strip('"') != event.change_key:
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed "
            "in the request does not match the current change key for the item.",
        )


def _check_all_day(start: datetime, start_zone: str, end: datetime, end_zone: str) -> None:
    for instant, zone_name in ((start, start_zone), (end, end_zone)):
        zone = zone_for(zone_name) or UTC
        if instant.astimezone(zone).time() != time(0, 0):
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "An all-day event must start and end at midnight of its time zone.",
            )
    if end <= start:
        raise GraphError(400, "ErrorInvalidRequest", "An all-day event must last whole days.")
