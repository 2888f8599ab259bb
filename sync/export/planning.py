"""Which Graph writes bring one staff member's calendar to its desired state (pure).

The reconcile worker gives the events the staff member should have (item key -> draft) and the
links it keeps (item key -> the Graph event it last wrote for that item), and applies the changes
planned here. Planning again over the resulting state plans nothing, which is what makes
duplicate and late queue messages harmless.

Creates never duplicate. Each carries a `transactionId` derived from (staff, item, generation),
so a retried POST returns the event the first one made, and the adapter writes the link with
`pending_create` before the POST. A create whose answer was lost is planned again with
`recover=True`: look the event up by its Coconut-id extended property first, and create only if
it is not there, under the next generation (the first attempt may have made an event a person
has deleted since, and its transaction id would answer with that dead event).

A transaction id is never used for a second event: Graph would answer it with the first one, even
after that was deleted. So a link whose event is gone (removed by us, deleted in Outlook, or a
create that may or may not have happened) is kept *retired* rather than dropped: no event, and the
generation the next create must use (`retire`). Retired links are dropped (`ForgetLink`) only for
items that can never come back: those deleted in Coconut.

Link states and what they plan:

| link                         | wanted                        | not wanted                        |
| ---------------------------- | ----------------------------- | --------------------------------- |
| none                         | create, generation 0          | -                                 |
| pending create               | create again, recover         | remove unconfirmed (find, delete) |
| event, same content hash     | -                             | remove                            |
| event, other content hash    | update                        | remove                            |
| retired (no event)           | create, the link's generation | forget if finished, else -        |
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from sync.export.rendering import EventDraft

# Fixed namespace for event transaction ids: changing it would re-key every pending create.
_TRANSACTION_NAMESPACE: Final = uuid.UUID("6f1c1f0e-3d55-4f0b-9a57-2b8f3c4d9e21")


class EventLink(BaseModel):
    """What the service last knew of the Graph event for one item in one staff calendar."""

    model_config = ConfigDict(frozen=True)

    item_key: str
    event_id: str | None = None
    # Hash of the draft last written, and the event's changeKey after that write.
    content_hash: str | None = None
    change_key: str | None = None
    # Part of the transaction id: that of the event held or the create in flight; on a retired
    # link, the one the next create uses.
    generation: int = 0
    # A create for `generation` was started (link written before the POST), answer not recorded.
    pending_create: bool = False
    # The delta round completed when the service last wrote the event (`ImportCursor.round_mark`):
    # delta only reports the removal of what a round handed out, so an event written after that
    # round and removed before the next is in no round; the import looks such events up.
    written_after: str = ""


def retire(link: EventLink) -> EventLink:
    """The link to keep once its event is gone (or may have been made and removed): the
    transaction id used so far is spent, so the next create moves to the next generation."""
    return EventLink(item_key=link.item_key, generation=link.generation + 1)


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_key: str


class CreateEvent(_Change):
    """Write the link (generation, pending_create) first, POST the event with `transaction_id`,
    then record event id, content hash and change key (pending_create false).

    `recover`: an earlier attempt may have created the event already. Look it up by the
    Coconut-id extended property first; if found, adopt it (PATCH it to `draft`) instead of
    posting; if not, post under the next generation.
    """

    kind: Literal["create"] = "create"
    draft: EventDraft
    transaction_id: str
    generation: int
    recover: bool = False


class UpdateEvent(_Change):
    """PATCH the event to `draft`, then record its content hash and new change key.

    On 404 (deleted in Outlook meanwhile) `retire` the link: the next plan creates it anew.
    """

    kind: Literal["update"] = "update"
    event_id: str
    draft: EventDraft


class RemoveEvent(_Change):
    """DELETE the event (404 counts as done), then `retire` the link, or drop it if
    `forget_link` (the item was deleted in Coconut)."""

    kind: Literal["remove"] = "remove"
    event_id: str
    forget_link: bool = False


class RemoveUnconfirmedEvent(_Change):
    """A create that was never confirmed, for an item no longer wanted: find the event by the
    Coconut-id extended property, DELETE it if it exists, then `retire` the link (or drop it if
    `forget_link`)."""

    kind: Literal["remove_unconfirmed"] = "remove_unconfirmed"
    forget_link: bool = False


class ForgetLink(_Change):
    """Drop a retired link of an item deleted in Coconut (no Graph call)."""

    kind: Literal["forget"] = "forget"


CalendarChange = CreateEvent | UpdateEvent | RemoveEvent | RemoveUnconfirmedEvent | ForgetLink

# Removals first (they free the calendar slot), then updates, then creates; by key within each.
_ORDER: Final = {"forget": 0, "remove_unconfirmed": 1, "remove": 2, "update": 3, "create": 4}


def transaction_id(staff_id: str, item_key: str, generation: int) -> str:
    """The Graph `transactionId` for creating this item's event in this calendar."""
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, f"{staff_id}\n{item_key}\n{generation}"))


def _create(
    staff_id: str, item_key: str, draft: EventDraft, generation: int, *, recover: bool = False
) -> CreateEvent:
    return CreateEvent(
        item_key=item_key,
        draft=draft,
        transaction_id=transaction_id(staff_id, item_key, generation),
        generation=generation,
        recover=recover,
    )


def _plan_item(
    staff_id: str, key: str, draft: EventDraft | None, link: EventLink | None, finished: bool
) -> CalendarChange | None:
    if link is None:
        return None if draft is None else _create(staff_id, key, draft, 0)
    if link.pending_create:
        if draft is None:
            return RemoveUnconfirmedEvent(item_key=key, forget_link=finished)
        return _create(staff_id, key, draft, link.generation, recover=True)
    if link.event_id is None:
        if draft is None:
            return ForgetLink(item_key=key) if finished else None
        return _create(staff_id, key, draft, link.generation)
    if draft is None:
        return RemoveEvent(item_key=key, event_id=link.event_id, forget_link=finished)
    if draft.content_hash() != link.content_hash:
        return UpdateEvent(item_key=key, event_id=link.event_id, draft=draft)
    return None


def _in_order(changes: list[CalendarChange]) -> list[CalendarChange]:
    return sorted(changes, key=lambda change: (_ORDER[change.kind], change.item_key))


def plan_calendar_changes(
    staff_id: str,
    desired: Mapping[str, EventDraft],
    links: Mapping[str, EventLink],
    finished: Collection[str] = frozenset(),
) -> list[CalendarChange]:
    """The Graph changes that make this staff member's calendar match `desired`.

    `desired`: item key -> draft for every item the staff member should have now (booked, not
    deleted, assigned to them). `links`: item key -> what is known of the Graph event written for
    it. `finished`: keys of items deleted in Coconut, whose links may go for good. An unchanged
    draft plans nothing.
    """
    changes = [
        change
        for key in desired.keys() | links.keys()
        if (
            change := _plan_item(
                staff_id, key, desired.get(key), links.get(key), finished=key in finished
            )
        )
        is not None
    ]
    return _in_order(changes)


def plan_drift_repairs(
    staff_id: str,
    desired: Mapping[str, EventDraft],
    links: Mapping[str, EventLink],
    observed: Mapping[str, str | None],
) -> list[CalendarChange]:
    """Repairs for wanted events changed in Outlook, given what Graph reports for them now.

    `observed`: item key -> the event's current changeKey, or None when Graph answers 404 (deleted
    in Outlook). An event edited in Outlook is written back (Coconut wins); a deleted one is
    created anew with the next generation. Unwanted events need no repair here: the regular plan
    removes them (a 404 on that DELETE counts as done).
    """
    changes: list[CalendarChange] = []
    for key, change_key in observed.items():
        link = links.get(key)
        draft = desired.get(key)
        if draft is None or link is None or link.event_id is None or link.pending_create:
            continue
        if change_key is None:
            changes.append(_create(staff_id, key, draft, link.generation + 1))
        elif change_key != link.change_key:
            changes.append(UpdateEvent(item_key=key, event_id=link.event_id, draft=draft))
    return _in_order(changes)
