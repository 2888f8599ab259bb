"""Staff members acting in Outlook during the run: their own appointments (created, moved,
freed, deleted) and the service's events (edited, deleted into Deleted Items, deleted for good,
moved to another calendar), which the service must put back: Coconut wins.

Every decision is drawn from the seeded RNG the same way whatever the calendars hold at that
moment, so the same seed makes the same edits in the same order: which of the service's events
a person goes for is picked among the items Coconut says the calendar should hold (the
workload's record), not among the events that happen to be there. If that event is not in the
calendar yet, the person acts once it is there (or never, if the item leaves the calendar first:
counted as missed).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from local.graph_emulator.server import GraphEmulator
from sync.graph.calendar import COCONUT_ID_PROPERTY

IMPORTED_SHOW_AS = ("busy", "tentative", "oof")
# The other calendar people drag events into.
OTHER_CALENDAR: Final = "Personal"

TamperKind = Literal["edited", "deleted", "purged", "moved", "missed"]
# What a person does to a service event, by cumulative share.
TAMPER_SHARES: Final[tuple[tuple[float, TamperKind], ...]] = (
    (0.35, "edited"),
    (0.65, "deleted"),
    (0.85, "purged"),
    (1.01, "moved"),
)


def is_service_event(event: dict[str, Any]) -> bool:
    props = event.get("singleValueExtendedProperties") or []
    return any(p.get("id", "").lower() == COCONUT_ID_PROPERTY.lower() for p in props)


def coconut_key(event: dict[str, Any]) -> str:
    """The item key the service stamped on its event ("" for a person's own event)."""
    for prop in event.get("singleValueExtendedProperties") or []:
        if prop.get("id", "").lower() == COCONUT_ID_PROPERTY.lower():
            return str(prop["value"])
    return ""


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@dataclass
class OwnEvent:
    start: datetime
    end: datetime
    show_as: str


@dataclass(frozen=True)
class OwnEdit:
    """One thing a person did to their own event: when (run seconds), whose, which event (its
    Graph id) and what (created, moved, shown as, deleted). Ids and statuses only."""

    at: float
    staff_id: str
    event_id: str
    what: str

    def line(self) -> str:
        return f"{self.at:8.2f}s a person: {self.what} own event {self.event_id[-12:]}"


@dataclass(frozen=True)
class Tamper:
    """One edit of a service event: who, which item, what was done, when (run seconds)."""

    staff_id: str
    item_key: str
    kind: TamperKind
    at: float
    event_id: str = ""


@dataclass
class OutlookActor:
    graph: GraphEmulator
    mailboxes: dict[str, str]  # staff id -> mailbox id
    rng: random.Random
    # staff id -> the item keys Coconut says their calendar should hold now (sorted).
    wanted: Callable[[str], list[str]] = lambda _staff_id: []
    clock: Callable[[], float] = lambda: 0.0
    # staff -> event id -> it, in the order created (ids are the emulator's, random).
    own: dict[str, dict[str, OwnEvent]] = field(default_factory=dict)
    edits: int = 0
    tampers: list[Tamper] = field(default_factory=list)
    # Tampering decided on, waiting for the service to write the event: staff, item, kind.
    intended: list[tuple[str, str, TamperKind]] = field(default_factory=list)
    # What was decided, in order: the same for the same seed.
    decisions: list[str] = field(default_factory=list)
    # What was done to the people's own events, with their ids (random: not in `decisions`).
    own_edits: list[OwnEdit] = field(default_factory=list)

    @property
    def tampered(self) -> int:
        return sum(1 for t in self.tampers if t.kind != "missed")

    def tamper_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tamper in self.tampers:
            counts[tamper.kind] = counts.get(tamper.kind, 0) + 1
        return counts

    def act(self) -> None:
        """One random thing a staff member does in Outlook. The draws are the same whatever
        is chosen, so later draws never depend on what the calendars held."""
        staffed = sorted(self.mailboxes, key=_staff_order)
        staff_id = staffed[self.rng.randrange(len(staffed))]
        roll, pick, how = self.rng.random(), self.rng.random(), self.rng.random()
        start, end = self._slot()
        show_as = self.rng.choice(("busy", "busy", "tentative", "oof", "free"))
        mailbox = self.mailboxes[staff_id]
        mine = self.own.setdefault(staff_id, {})
        self.edits += 1
        if not mine or roll < 0.40:
            self._create(staff_id, mailbox, mine, start, end, show_as)
        elif roll < 0.55:
            self._move(staff_id, mailbox, mine, pick, start, end)
        elif roll < 0.65:
            self._change_show_as(staff_id, mailbox, mine, pick, show_as)
        elif roll < 0.80:
            index = int(pick * len(mine))
            event_id = list(mine)[index]
            self.graph.delete_event_as_person(mailbox, event_id)
            del mine[event_id]
            self.decisions.append(f"{staff_id} deletes own #{index}")
            self._edited(staff_id, event_id, "deleted")
        else:
            self._tamper(staff_id, pick, how)

    def _slot(self) -> tuple[datetime, datetime]:
        day = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
        start = day + timedelta(days=self.rng.randrange(1, 60), minutes=30 * self.rng.randrange(20))
        return start, start + timedelta(minutes=self.rng.choice((30, 60, 120)))

    def _create(
        self,
        staff_id: str,
        mailbox: str,
        mine: dict[str, OwnEvent],
        start: datetime,
        end: datetime,
        show_as: str,
    ) -> None:
        body = {
            "subject": "Personal",
            "showAs": show_as,
            "start": _graph_time(start),
            "end": _graph_time(end),
        }
        event = self.graph.create_event_as_person(mailbox, body)
        mine[event.id] = OwnEvent(start, end, show_as)
        self.decisions.append(f"{staff_id} creates own {start:%m-%dT%H:%M} {show_as}")
        self._edited(staff_id, event.id, f"created ({start:%m-%dT%H:%M}, {show_as})")

    def _move(
        self,
        staff_id: str,
        mailbox: str,
        mine: dict[str, OwnEvent],
        pick: float,
        start: datetime,
        end: datetime,
    ) -> None:
        index = int(pick * len(mine))
        event_id = list(mine)[index]
        self.graph.update_event_as_person(
            mailbox, event_id, {"start": _graph_time(start), "end": _graph_time(end)}
        )
        mine[event_id].start, mine[event_id].end = start, end
        self.decisions.append(f"{staff_id} moves own #{index} to {start:%m-%dT%H:%M}")
        self._edited(staff_id, event_id, f"moved ({start:%m-%dT%H:%M})")

    def _change_show_as(
        self, staff_id: str, mailbox: str, mine: dict[str, OwnEvent], pick: float, show_as: str
    ) -> None:
        index = int(pick * len(mine))
        event_id = list(mine)[index]
        self.graph.update_event_as_person(mailbox, event_id, {"showAs": show_as})
        mine[event_id].show_as = show_as
        self.decisions.append(f"{staff_id} shows own #{index} as {show_as}")
        self._edited(staff_id, event_id, f"shown as {show_as}")

    def _edited(self, staff_id: str, event_id: str, what: str) -> None:
        self.own_edits.append(OwnEdit(self.clock(), staff_id, event_id, what))

    def _tamper(self, staff_id: str, pick: float, how: float) -> None:
        """Decide to edit, delete (into Deleted Items), delete for good (Shift+Delete) or move
        to another calendar the event the service wrote for one of the staff member's items;
        done as soon as that event is in the calendar (`follow_up`)."""
        kind = next(kind for bound, kind in TAMPER_SHARES if how < bound)
        wanted = self.wanted(staff_id)
        if not wanted:
            self.decisions.append(f"{staff_id} {kind}: no item")
            return
        key = wanted[int(pick * len(wanted))]
        self.decisions.append(f"{staff_id} {kind} {key}")
        self.intended.append((staff_id, key, kind))
        self.follow_up()

    def follow_up(self) -> None:
        """Carry out the tampering decided on whose events are now in the calendar; give up on
        items the calendar should no longer hold (or that `wanted` leaves out since)."""
        waiting = []
        for staff_id, key, kind in self.intended:
            mailbox = self.mailboxes[staff_id]
            if key not in self.wanted(staff_id):
                self.tampers.append(Tamper(staff_id, key, "missed", self.clock()))
                continue
            found = [e for e in self.graph.events(mailbox) if coconut_key(e) == key]
            if not found:
                waiting.append((staff_id, key, kind))
                continue
            event_id = str(found[0]["id"])
            if kind == "edited":
                self.graph.update_event_as_person(mailbox, event_id, {"subject": "Edited by me"})
            elif kind == "deleted":
                self.graph.delete_event_as_person(mailbox, event_id)
            elif kind == "purged":
                self.graph.delete_event_as_person(mailbox, event_id, permanent=True)
            else:
                self.graph.move_event_as_person(mailbox, event_id, OTHER_CALENDAR)
            self.tampers.append(Tamper(staff_id, key, kind, self.clock(), event_id))
        self.intended = waiting

    def expected_busy(self, staff_id: str) -> list[tuple[datetime, datetime, str]]:
        """The busy blocks Coconut should hold for this staff member's own events."""
        return sorted(self.expected_busy_events(staff_id).values())

    def expected_busy_events(self, staff_id: str) -> dict[str, tuple[datetime, datetime, str]]:
        """Event id -> the busy block Coconut should hold for that own event."""
        return {
            event_id: (e.start, e.end, e.show_as)
            for event_id, e in self.own.get(staff_id, {}).items()
            if e.show_as in IMPORTED_SHOW_AS
        }


def _staff_order(staff_id: str) -> tuple[int, str]:
    """Staff ids end in their number: order by it, whatever the run's tag."""
    head, _, number = staff_id.rpartition("-")
    return (int(number), head) if number.isdigit() else (0, staff_id)
