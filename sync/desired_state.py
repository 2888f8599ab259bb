"""The desired state of each Coconut item, and how a delivery changes it (no storage here).

The webhook records what each appointment or absence should look like now (highest revision wins)
and then asks for a reconcile of every staff member it touches. `decide` is that rule.

Revision rules (contracts/coconut-webhooks.md), with the choices the contract leaves open:

- A change with a higher revision than the record replaces it; the same revision is a duplicate; a
  lower one is stale.
- A deletion is final: anything arriving after it is stale (a redelivery of the very same
  deletion is a duplicate).
- A deletion whose revision is *lower* than a recorded change is still accepted. Coconut cannot
  change a deleted appointment, so every change we hold happened before the deletion; a low
  revision on a deletion can only mean the deletion was stamped with an older revision. Ignoring
  it would leave an appointment, with its customer's details, in a calendar for good; accepting
  it can only remove something Coconut no longer has. The tombstone keeps the deletion's own
  revision, so a redelivery of it is recognised as a duplicate.
- A cancelled appointment is recorded like any change (status cancelled), so reconciling removes
  its events; it is not wanted in any calendar.
- Coconut's listings (contracts/coconut-api.md) are recorded exactly like webhooks. An item a
  complete listing of a staff member no longer shows has left their calendar: it is *withdrawn*
  from them (`withdraw`), at the same revision, since the listing does not say which revision
  took it away. A later listing or webhook at that same revision that assigns it to them again
  restores it (the listing that missed it raced a change); anything newer wins as always.

What a record keeps, and for how long (docs/data-map.md):

- Only what the event is made of (`sync.kept_content`); the storage adapter encrypts it.
- Once the item has ended and its retention passed, or once none of its staff is synced any more
  (a disconnect), the content goes and the record stays as a content-free tombstone (`purged`)
  with the revision, so a stale delivery stays stale (`sync.retention`). The event such an item
  left in a calendar is the staff member's history: nothing writes or removes it any more
  (`leaves_events_alone`).
- A record withheld at a disconnect takes its content back from a change of the *same*
  revision: Coconut's listing re-reads what a reconnected staff member has. A record purged for
  retention does not: the same revision again is a duplicate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sync.coconut.webhook_models import (
    Appointment,
    AppointmentChange,
    AppointmentDeleted,
    Delivery,
    IgnoredEvent,
    Unavailability,
    UnavailabilityChange,
    UnavailabilityDeleted,
)
from sync.kept_content import kept_for_event

ItemKind = Literal["appointment", "unavailability"]
Outcome = Literal["accepted", "duplicate", "stale", "ignored"]
# Why a record that is not deleted holds no content.
PurgeReason = Literal["retention", "disconnect"]


def item_key(kind: ItemKind, coconut_id: str) -> str:
    """The key of one Coconut item across the service, e.g. "appointment:A-1001"."""
    return f"{kind}:{coconut_id}"


class DesiredItem(BaseModel):
    """What one Coconut appointment or absence should look like, as of `revision`."""

    model_config = ConfigDict(frozen=True)

    kind: ItemKind
    coconut_id: str
    revision: int
    deleted: bool
    # The validated resource; None once deleted (a tombstone keeps only the revision).
    resource: Appointment | Unavailability | None
    # Staff the item is assigned to now (empty once deleted).
    staff_ids: frozenset[str]
    # Staff it was assigned to at the revision before: a redelivery after a failed enqueue can
    # then reach the staff member an event has to be removed from, too.
    previous_staff_ids: frozenset[str] = frozenset()
    # Staff id -> Coconut work e-mail, to find their Microsoft 365 user. Never log it.
    staff_emails: dict[str, str] = Field(default_factory=dict, repr=False)
    # Staff a complete listing no longer showed it for, at this revision (see `withdraw`).
    withdrawn_staff: frozenset[str] = frozenset()
    # When the item ends; a tombstone keeps it (retention counts from it). None: not known.
    ends_at: AwareDatetime | None = None
    # When this state was recorded here (set on the write): tombstones outlive it, and a
    # listing that began before it cannot withdraw it.
    recorded_at: AwareDatetime | None = None
    # Set once the content went although the item was not deleted (see the module docstring).
    purged: PurgeReason | None = None

    @property
    def key(self) -> str:
        return item_key(self.kind, self.coconut_id)

    @property
    def has_content(self) -> bool:
        return self.resource is not None


def readable_part(item: DesiredItem) -> DesiredItem:
    """The record without its content: what storage keeps readable, and all that deciding on a
    delivery needs."""
    return item.model_copy(update={"resource": None, "staff_emails": {}})


def without_content(item: DesiredItem, reason: PurgeReason) -> DesiredItem:
    """The content-free tombstone of a record: ids, revision, staff ids, end and flags only."""
    return item.model_copy(update={"resource": None, "staff_emails": {}, "purged": reason})


def leaves_events_alone(item: DesiredItem | None) -> bool:
    """Whether the events this item left in calendars are history the sync no longer touches:
    its content was purged (ended past retention, or withheld), or its record is gone."""
    return item is None or item.purged is not None


def is_wanted_by(item: DesiredItem, staff_id: str) -> bool:
    """Whether this item should be an event in this staff member's calendar now."""
    if item.deleted or item.resource is None or staff_id not in item.staff_ids:
        return False
    return not (isinstance(item.resource, Appointment) and item.resource.status == "cancelled")


class Decision(BaseModel):
    """What to do with a delivery: the record to write, and whose calendars to reconcile."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    # The new record to store (only when accepted).
    record: DesiredItem | None = None
    # Staff whose calendars to reconcile: old and new assignees on an accepted change (so a
    # reassignment reaches both), the recorded ones again on a duplicate (harmless if already done,
    # and it repairs an enqueue that failed after the record was written).
    reconcile_staff: frozenset[str] = frozenset()


def delivery_key(incoming: Delivery) -> str | None:
    """The item key a delivery is about (None for an ignored event): the record `decide` needs."""
    match incoming:
        case AppointmentChange(appointment=appointment):
            return item_key("appointment", appointment.id)
        case AppointmentDeleted(appointment_id=coconut_id):
            return item_key("appointment", coconut_id)
        case UnavailabilityChange(unavailability=unavailability):
            return item_key("unavailability", unavailability.id)
        case UnavailabilityDeleted(unavailability_id=coconut_id):
            return item_key("unavailability", coconut_id)
        case IgnoredEvent():
            return None


def _record_of_change(resource: Appointment | Unavailability) -> DesiredItem:
    staff = resource.staff if isinstance(resource, Appointment) else (resource.staff,)
    return DesiredItem(
        kind="appointment" if isinstance(resource, Appointment) else "unavailability",
        coconut_id=resource.id,
        revision=resource.revision,
        deleted=False,
        resource=kept_for_event(resource),
        staff_ids=frozenset(member.id for member in staff),
        staff_emails={member.id: member.email for member in staff},
        ends_at=resource.end,
    )


def _tombstone(kind: ItemKind, coconut_id: str, revision: int) -> DesiredItem:
    return DesiredItem(
        kind=kind,
        coconut_id=coconut_id,
        revision=revision,
        deleted=True,
        resource=None,
        staff_ids=frozenset(),
    )


def decide(recorded: DesiredItem | None, incoming: Delivery) -> Decision:
    """How `incoming` changes the record of its item, given what is recorded for it now."""
    if recorded is not None and recorded.key != delivery_key(incoming):
        raise ValueError("the recorded item is not the one the delivery is about")

    match incoming:
        case IgnoredEvent():
            return Decision(outcome="ignored")
        case (
            AppointmentChange(appointment=resource) | UnavailabilityChange(unavailability=resource)
        ):
            return _decide_change(recorded, _record_of_change(resource))
        case AppointmentDeleted(appointment_id=coconut_id, revision=revision):
            return _decide_deletion(recorded, _tombstone("appointment", coconut_id, revision))
        case UnavailabilityDeleted(unavailability_id=coconut_id, revision=revision):
            return _decide_deletion(recorded, _tombstone("unavailability", coconut_id, revision))


def _redelivered(recorded: DesiredItem) -> Decision:
    return Decision(
        outcome="duplicate",
        reconcile_staff=recorded.staff_ids | recorded.previous_staff_ids,
    )


def _decide_change(recorded: DesiredItem | None, new: DesiredItem) -> Decision:
    if recorded is None:
        return Decision(outcome="accepted", record=new, reconcile_staff=new.staff_ids)
    if recorded.deleted or new.revision < recorded.revision:
        return Decision(outcome="stale")
    if new.revision == recorded.revision:
        if recorded.purged == "disconnect":
            # Withheld at a disconnect: Coconut's listing brings the same revision back for a
            # reconnected staff member, and with it the content.
            restored = new.model_copy(update={"previous_staff_ids": recorded.previous_staff_ids})
            return Decision(outcome="accepted", record=restored, reconcile_staff=new.staff_ids)
        if not (new.staff_ids & recorded.withdrawn_staff):
            return _redelivered(recorded)
    record = new.model_copy(update={"previous_staff_ids": recorded.staff_ids})
    return Decision(
        outcome="accepted",
        record=record,
        reconcile_staff=recorded.staff_ids | new.staff_ids,
    )


def withdraw(recorded: DesiredItem, staff_id: str) -> DesiredItem | None:
    """The record once a complete listing of `staff_id` no longer shows the item (deleted in
    Coconut, or reassigned to someone else), or None when there is nothing to withdraw."""
    if recorded.deleted or staff_id not in recorded.staff_ids:
        return None
    return recorded.model_copy(
        update={
            "staff_ids": recorded.staff_ids - {staff_id},
            "previous_staff_ids": recorded.staff_ids,
            "staff_emails": {k: v for k, v in recorded.staff_emails.items() if k != staff_id},
            "withdrawn_staff": recorded.withdrawn_staff | {staff_id},
        }
    )


def _decide_deletion(recorded: DesiredItem | None, tombstone: DesiredItem) -> Decision:
    if recorded is None:
        return Decision(outcome="accepted", record=tombstone)
    if recorded.deleted:
        if tombstone.revision == recorded.revision:
            return _redelivered(recorded)
        return Decision(outcome="stale")
    record = tombstone.model_copy(
        update={"previous_staff_ids": recorded.staff_ids, "ends_at": recorded.ends_at}
    )
    return Decision(outcome="accepted", record=record, reconcile_staff=recorded.staff_ids)
