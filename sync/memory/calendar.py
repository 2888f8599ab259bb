"""Exchange mailboxes in memory (`sync.ports.MailboxCalendar`), strict where Graph is:

- a `transactionId` stays bound to the event first created with it, even after that event was
  deleted: a repeated POST creates nothing and answers with the original (whose id may now be
  gone), so a client that recreates must use a new one; a repeat whose body describes another
  event is refused (400 `ErrorDuplicateTransactionId`, as real tenants answer: graph/FACTS.md);
- every change makes a new change key; a gone event answers `EventGone` to an update;
- delta rounds page through what changed since the link, `@removed` for what left the calendar
  (only for what the link's round could have handed out: an event made and gone between two
  rounds is in neither, as Exchange tracks what a sync state was given);
- scheduled failures (`Faults`): 429/503 with their delay, and a lost answer (the write
  happened, the caller hears a 503).

People act on it too (`person_create`, `person_edit`, `person_delete`), as in Outlook.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sync.errors import DeltaExpired, EventGone
from sync.graph.calls import retry_later
from sync.graph.errors import GraphRefused, GraphRetryable, MailboxUnreachable
from sync.memory.faults import Crash, Faults
from sync.ports import DeltaPage, MailboxUser, WrittenEvent
from sync.timezones import UnknownTimeZone, mailbox_zone

GRAPH: Final = "graph"
Folder = Literal["calendar", "deleted", "other"]
DELTA_PAGE_SIZE: Final = 10


@dataclass
class MemoryEvent:
    id: str
    body: dict[str, Any]
    change_key: str
    coconut_key: str | None  # the Coconut-id extended property, if the service wrote it
    version: int  # when it last changed (the calendar's change counter)
    # Where it is: the primary calendar, Deleted Items, or another calendar of the mailbox.
    folder: Folder = "calendar"
    # When it was made (the calendar's change counter), for what a delta round had handed out.
    created: int = 0

    @property
    def in_calendar(self) -> bool:
        return self.folder == "calendar"

    def instant(self, side: str) -> datetime:
        value = self.body[side]
        naive = datetime.fromisoformat(value["dateTime"])
        return naive.replace(tzinfo=mailbox_zone(value["timeZone"])).astimezone(UTC)

    def as_delta_item(self) -> dict[str, Any]:
        """As calendarView/delta returns it: times in UTC, no extended properties."""
        item = {key: value for key, value in self.body.items() if key not in ("start", "end")}
        for side in ("start", "end"):
            moment = self.instant(side).replace(tzinfo=None)
            item[side] = {"dateTime": moment.isoformat(), "timeZone": "UTC"}
        return {**item, "id": self.id, "changeKey": self.change_key, "type": "singleInstance"}


@dataclass
class Mailbox:
    user: MailboxUser
    mail: str
    events: dict[str, MemoryEvent] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)
    # Transaction id -> what the POST that created its event said (`_fingerprint`).
    created_with: dict[str, str] = field(default_factory=dict)
    # Delta links carry it; a new epoch makes every older link unknown (410 syncStateNotFound).
    delta_epoch: int = 0


class MemoryCalendar:
    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.mailboxes: dict[str, Mailbox] = {}
        self.unreachable: set[str] = set()
        self.failing_items: set[str] = set()
        self._counter = itertools.count(1)
        # Requests answered (successes and failures alike), for cost assertions.
        self.requests = 0

    # ----- set-up and what people do in Outlook -------------------------------------------

    def add_user(self, mail: str, time_zone: str = "UTC") -> MailboxUser:
        user = MailboxUser(f"user-{len(self.mailboxes) + 1}", time_zone)
        self.mailboxes[user.id] = Mailbox(user, mail)
        return user

    def live_events(self, user_id: str) -> list[MemoryEvent]:
        """The events in the primary calendar."""
        return [e for e in self.mailboxes[user_id].events.values() if e.in_calendar]

    def person_create(self, user_id: str, body: dict[str, Any]) -> str:
        return self._insert(self.mailboxes[user_id], body, None).id

    def person_edit(self, user_id: str, event_id: str, changes: dict[str, Any]) -> None:
        event = self.mailboxes[user_id].events[event_id]
        self._touch(event, {**event.body, **changes})

    def forget_delta_links(self, user_id: str) -> None:
        """Graph evicts the mailbox's sync state: the next incremental round answers 410."""
        self.mailboxes[user_id].delta_epoch += 1

    def person_delete(self, user_id: str, event_id: str) -> None:
        """Into Deleted Items, as Outlook does."""
        self._move(self.mailboxes[user_id].events[event_id], "deleted")

    def person_move(self, user_id: str, event_id: str) -> None:
        """To another calendar of the mailbox."""
        self._move(self.mailboxes[user_id].events[event_id], "other")

    def set_reachable(self, user_id: str, reachable: bool) -> None:
        """A mailbox Graph cannot serve (on-premises, unlicensed): 404 on every request."""
        if reachable:
            self.unreachable.discard(user_id)
        else:
            self.unreachable.add(user_id)

    def fail_item(self, coconut_key: str, failing: bool = True) -> None:
        """Every request about this item's event answers 500, until told otherwise."""
        if failing:
            self.failing_items.add(coconut_key)
        else:
            self.failing_items.discard(coconut_key)

    # ----- the port ----------------------------------------------------------------------

    async def find_user(self, mail: str) -> MailboxUser | None:
        self._request()
        found = [m.user for m in self.mailboxes.values() if m.mail.casefold() == mail.casefold()]
        if len(found) != 1:
            return None
        # The directory knows the user; the mailbox settings are the mailbox's to answer.
        self._request(found[0].id)
        return found[0]

    async def create_event(
        self, user_id: str, body: dict[str, Any], *, transaction_id: str, coconut_key: str
    ) -> WrittenEvent:
        self._request(user_id)
        self._about(coconut_key)
        mailbox = self.mailboxes[user_id]
        original = mailbox.transactions.get(transaction_id)
        fingerprint = _fingerprint(body, coconut_key)
        if original is not None:
            if mailbox.created_with[transaction_id] != fingerprint:
                raise GraphRefused(
                    f"Graph answered 400 {DUPLICATE_TRANSACTION}",
                    status=400,
                    code=DUPLICATE_TRANSACTION,
                )
            event = mailbox.events[original]
            return WrittenEvent(event.id, event.change_key)
        event = self._insert(mailbox, body, coconut_key)
        mailbox.transactions[transaction_id] = event.id
        mailbox.created_with[transaction_id] = fingerprint
        self._answer_lost()
        return WrittenEvent(event.id, event.change_key)

    async def update_event(self, user_id: str, event_id: str, body: dict[str, Any]) -> WrittenEvent:
        self._request(user_id)
        event = self._live(user_id, event_id)
        self._about(event.coconut_key)
        self._touch(event, {**event.body, **body})
        self._answer_lost()
        return WrittenEvent(event.id, event.change_key)

    async def delete_event(self, user_id: str, event_id: str) -> None:
        self._request(user_id)
        event = self.mailboxes[user_id].events.get(event_id)
        if event is not None and event.in_calendar:
            self._about(event.coconut_key)
            self._move(event, "deleted")
            self._answer_lost()

    async def find_events_for(self, user_id: str, coconut_key: str) -> list[WrittenEvent]:
        self._request(user_id)
        self._about(coconut_key)
        return [
            WrittenEvent(e.id, e.change_key)
            for e in self.live_events(user_id)
            if e.coconut_key == coconut_key
        ]

    async def find_service_events(self, user_id: str) -> list[WrittenEvent]:
        self._request(user_id)
        return [
            WrittenEvent(e.id, e.change_key)
            for e in self.live_events(user_id)
            if e.coconut_key is not None
        ]

    async def change_key_of(self, user_id: str, event_id: str) -> str | None:
        self._request(user_id)
        event = self.mailboxes[user_id].events.get(event_id)
        if event is not None:  # Graph keeps failing on an event in any folder
            self._about(event.coconut_key)
        if event is None or not event.in_calendar:
            return None
        return event.change_key

    async def calendar_delta(
        self,
        user_id: str,
        *,
        link: str | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> DeltaPage:
        """Links are `delta|<user>:<epoch>|<since>|<start>|<end>|<offset>`: a round reports every
        event changed after `since` (a first round, `since` -1, reports what is there and
        nothing removed), `offset` pages into it."""
        self._request(user_id)
        if link is None:
            if window is None:
                raise ValueError("a new delta round needs its window")
            since, start, end, offset = -1, window[0], window[1], 0
        else:
            parts = link.split("|")
            if len(parts) != 6 or parts[0] != "delta" or parts[1] != self._delta_owner(user_id):
                raise DeltaExpired("Graph answered 410 syncStateNotFound", status=410)
            since, offset = int(parts[2]), int(parts[5])
            start, end = datetime.fromisoformat(parts[3]), datetime.fromisoformat(parts[4])
        mailbox = self.mailboxes[user_id]
        changed = sorted(
            (e for e in mailbox.events.values() if e.version > since),
            key=lambda e: e.version,
        )
        items: list[dict[str, Any]] = []
        for event in changed:
            in_view = event.in_calendar and event.instant("end") > start
            in_view = in_view and event.instant("start") < end
            if in_view:
                items.append(event.as_delta_item())
            elif 0 <= event.created <= since:  # a first round has nothing to remove
                items.append({"id": event.id, "@removed": {"reason": "deleted"}})
        page = items[offset : offset + DELTA_PAGE_SIZE]
        head = f"delta|{self._delta_owner(user_id)}"
        if offset + DELTA_PAGE_SIZE < len(items):
            next_link = f"{head}|{since}|{start.isoformat()}|{end.isoformat()}|"
            return DeltaPage(page, next_link + str(offset + DELTA_PAGE_SIZE), None)
        upto = max((e.version for e in mailbox.events.values()), default=0)
        delta_link = f"{head}|{max(upto, since, 0)}|{start.isoformat()}|{end.isoformat()}|0"
        return DeltaPage(page, None, delta_link)

    # ----- inside ------------------------------------------------------------------------

    def _request(self, user_id: str | None = None) -> None:
        self.requests += 1
        self.faults.check(GRAPH)
        if user_id in self.unreachable:
            raise MailboxUnreachable(
                "Graph answered 404 MailboxNotEnabledForRESTAPI: Graph cannot serve this "
                "user's mailbox",
                status=404,
                code="MailboxNotEnabledForRESTAPI",
            )

    def _answer_lost(self) -> None:
        """The write happened; a scheduled crash kills the process before it hears the answer,
        a scheduled "lost answer" turns the answer into a 503."""
        if self.faults.crash_after_writes > 0:
            self.faults.crash_after_writes -= 1
            if self.faults.crash_after_writes == 0:
                self.faults.crash()
                raise Crash("after a Graph write")
        if self.faults.scheduled.get(LOST_ANSWER):
            raise self.faults.scheduled[LOST_ANSWER].popleft()

    def lose_next_answers(self, count: int = 1, *, answer: GraphRetryable | None = None) -> None:
        """The next `count` writes are made and answered with `answer` (a 503 by default; a
        429 stands for a retry refused after a first attempt whose answer was lost)."""
        lost = answer or retry_later(1.0, 503, "LostAnswer")
        self.faults.fail_next(LOST_ANSWER, *[lost] * count)

    def throttle_next(self, count: int, retry_after: float = 2.0) -> None:
        self.faults.fail_next(GRAPH, *[retry_later(retry_after, 429, None)] * count)

    def _delta_owner(self, user_id: str) -> str:
        return f"{user_id}:{self.mailboxes[user_id].delta_epoch}"

    def _live(self, user_id: str, event_id: str) -> MemoryEvent:
        event = self.mailboxes[user_id].events.get(event_id)
        if event is None or not event.in_calendar:
            raise EventGone("Graph answered 404 ErrorItemNotFound", status=404)
        return event

    def _insert(
        self, mailbox: Mailbox, body: dict[str, Any], coconut_key: str | None
    ) -> MemoryEvent:
        number = next(self._counter)
        event = MemoryEvent(
            f"ev-{number}", dict(body), f"ck-{number}", coconut_key, number, created=number
        )
        mailbox.events[event.id] = event
        return event

    def _move(self, event: MemoryEvent, folder: Folder) -> None:
        event.folder, event.version = folder, next(self._counter)

    def _about(self, coconut_key: str | None) -> None:
        """A request about one item's event: fails while that item is set to fail."""
        if coconut_key in self.failing_items:
            raise retry_later(0.0, 500, "ErrorInternalServerError")

    def _touch(self, event: MemoryEvent, body: dict[str, Any]) -> None:
        number = next(self._counter)
        event.body, event.change_key, event.version = body, f"ck-{number}", number


# A lost answer is not a failure of the request but of its answer: kept apart from GRAPH.
LOST_ANSWER: Final = "graph-lost-answer"
DUPLICATE_TRANSACTION: Final = "ErrorDuplicateTransactionId"


def _fingerprint(body: dict[str, Any], coconut_key: str) -> str:
    """What a create says, compared the way Graph compares a repeated `transactionId`: the
    properties written (nulls left out), `start`/`end` as the instant and the zone's name."""

    def written(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: written(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [written(item) for item in value]
        return value

    meaning = written(body)
    for side in ("start", "end"):
        value = body.get(side)
        if isinstance(value, dict):
            zone = str(value.get("timeZone", ""))
            try:
                naive = datetime.fromisoformat(str(value.get("dateTime")))
                moment = naive.replace(tzinfo=mailbox_zone(zone)).astimezone(UTC).isoformat()
            except (UnknownTimeZone, ValueError):
                moment = str(value.get("dateTime"))
            meaning[side] = [moment, zone.casefold()]
    return json.dumps([meaning, coconut_key], sort_keys=True, default=str)
