"""An in-memory Exchange calendar and the adapter steps the reconcile worker takes around it.

The calendar is strict where Graph is: a reused `transactionId` answers with the event first made
with it, even after that event was deleted, so reusing one after a removal leaves no event.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sync.export.planning import (
    CalendarChange,
    CreateEvent,
    EventLink,
    ForgetLink,
    RemoveEvent,
    RemoveUnconfirmedEvent,
    UpdateEvent,
    retire,
)
from sync.export.rendering import EventDraft


@dataclass
class FakeEvent:
    draft: EventDraft
    item_key: str  # the Coconut-id extended property
    change_key: str


class EventNotFound(Exception):
    pass


class LostAnswer(Exception):
    """The POST reached Graph but the worker died before recording its answer."""


@dataclass
class FakeCalendar:
    events: dict[str, FakeEvent] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)
    writes: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _change_key(self) -> str:
        return f"ck-{next(self._ids)}"

    def post(self, draft: EventDraft, item_key: str, transaction_id: str) -> str:
        self.writes += 1
        if transaction_id in self.transactions:
            return self.transactions[transaction_id]
        event_id = f"ev-{next(self._ids)}"
        self.events[event_id] = FakeEvent(draft, item_key, self._change_key())
        self.transactions[transaction_id] = event_id
        return event_id

    def patch(self, event_id: str, draft: EventDraft) -> str:
        self.writes += 1
        if event_id not in self.events:
            raise EventNotFound(event_id)
        event = self.events[event_id]
        event.draft = draft
        event.change_key = self._change_key()
        return event.change_key

    def delete(self, event_id: str) -> None:
        self.writes += 1
        self.events.pop(event_id, None)

    def find(self, item_key: str) -> str | None:
        return next((eid for eid, ev in self.events.items() if ev.item_key == item_key), None)

    def edit_in_outlook(self, event_id: str, subject: str) -> None:
        event = self.events[event_id]
        event.draft = event.draft.model_copy(update={"subject": subject})
        event.change_key = self._change_key()

    def change_key_of(self, event_id: str) -> str | None:
        event = self.events.get(event_id)
        return None if event is None else event.change_key

    def drafts(self) -> dict[str, list[EventDraft]]:
        """Item key -> the drafts of every event tagged with it."""
        found: dict[str, list[EventDraft]] = {}
        for event in self.events.values():
            found.setdefault(event.item_key, []).append(event.draft)
        return found


def _confirmed(key: str, event_id: str, draft: EventDraft, change_key: str, gen: int) -> EventLink:
    return EventLink(
        item_key=key,
        event_id=event_id,
        content_hash=draft.content_hash(),
        change_key=change_key,
        generation=gen,
    )


def apply_change(
    change: CalendarChange,
    calendar: FakeCalendar,
    links: dict[str, EventLink],
    *,
    lose_answer: bool = False,
) -> None:
    """What the reconcile worker does for one planned change; `lose_answer` crashes after a POST."""
    key = change.item_key
    match change:
        case CreateEvent(draft=draft, transaction_id=tid, generation=gen, recover=recover):
            links[key] = EventLink(item_key=key, generation=gen, pending_create=True)
            found = calendar.find(key) if recover else None
            if found is not None:
                change_key = calendar.patch(found, draft)
                links[key] = _confirmed(key, found, draft, change_key, gen)
                return
            event_id = calendar.post(draft, key, tid)
            if lose_answer:
                raise LostAnswer(key)
            posted_key = calendar.change_key_of(event_id)
            # Graph answered with an event it no longer has: a spent transaction id was reused.
            assert posted_key is not None, "transaction id reused after its event was deleted"
            links[key] = _confirmed(key, event_id, draft, posted_key, gen)
        case UpdateEvent(event_id=event_id, draft=draft):
            try:
                change_key = calendar.patch(event_id, draft)
            except EventNotFound:
                links[key] = retire(links[key])
                return
            links[key] = _confirmed(key, event_id, draft, change_key, links[key].generation)
        case RemoveEvent(event_id=event_id, forget_link=forget):
            calendar.delete(event_id)
            _retire(links, key, forget=forget)
        case RemoveUnconfirmedEvent(forget_link=forget):
            found = calendar.find(key)
            if found is not None:
                calendar.delete(found)
            _retire(links, key, forget=forget)
        case ForgetLink():
            del links[key]


def _retire(links: dict[str, EventLink], key: str, *, forget: bool) -> None:
    if forget:
        del links[key]
    else:
        links[key] = retire(links[key])
