"""Staff members acting in Outlook during the run: their own appointments (created, moved,
freed, deleted) and, now and then, tampering with an event the service wrote (which the service
must put back: Coconut wins)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local.graph_emulator.server import GraphEmulator
from sync.graph.calendar import COCONUT_ID_PROPERTY

IMPORTED_SHOW_AS = ("busy", "tentative", "oof")


def is_service_event(event: dict[str, Any]) -> bool:
    props = event.get("singleValueExtendedProperties") or []
    return any(p.get("id", "").lower() == COCONUT_ID_PROPERTY.lower() for p in props)


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@dataclass
class OwnEvent:
    start: datetime
    end: datetime
    show_as: str


@dataclass
class OutlookActor:
    graph: GraphEmulator
    mailboxes: dict[str, str]  # staff id -> mailbox id
    rng: random.Random
    own: dict[str, dict[str, OwnEvent]] = field(default_factory=dict)  # staff -> event id -> it
    edits: int = 0
    tampered: int = 0

    def act(self) -> None:
        """One random thing a staff member does in Outlook."""
        staff_id = self.rng.choice(sorted(self.mailboxes))
        mailbox = self.mailboxes[staff_id]
        mine = self.own.setdefault(staff_id, {})
        roll = self.rng.random()
        self.edits += 1
        if not mine or roll < 0.45:
            self._create(mailbox, mine)
        elif roll < 0.65:
            self._move(mailbox, mine)
        elif roll < 0.75:
            self._change_show_as(mailbox, mine)
        elif roll < 0.88:
            event_id = self.rng.choice(sorted(mine))
            self.graph.delete_event_as_person(mailbox, event_id)
            del mine[event_id]
        else:
            self._tamper(mailbox)

    def _slot(self) -> tuple[datetime, datetime]:
        day = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
        start = day + timedelta(days=self.rng.randrange(1, 60), minutes=30 * self.rng.randrange(20))
        return start, start + timedelta(minutes=self.rng.choice((30, 60, 120)))

    def _create(self, mailbox: str, mine: dict[str, OwnEvent]) -> None:
        start, end = self._slot()
        show_as = self.rng.choice(("busy", "busy", "tentative", "oof", "free"))
        body = {
            "subject": "Personal",
            "showAs": show_as,
            "start": _graph_time(start),
            "end": _graph_time(end),
        }
        event = self.graph.create_event_as_person(mailbox, body)
        mine[event.id] = OwnEvent(start, end, show_as)

    def _move(self, mailbox: str, mine: dict[str, OwnEvent]) -> None:
        event_id = self.rng.choice(sorted(mine))
        start, end = self._slot()
        self.graph.update_event_as_person(
            mailbox, event_id, {"start": _graph_time(start), "end": _graph_time(end)}
        )
        mine[event_id].start, mine[event_id].end = start, end

    def _change_show_as(self, mailbox: str, mine: dict[str, OwnEvent]) -> None:
        event_id = self.rng.choice(sorted(mine))
        show_as = self.rng.choice(("busy", "tentative", "oof", "free"))
        self.graph.update_event_as_person(mailbox, event_id, {"showAs": show_as})
        mine[event_id].show_as = show_as

    def _tamper(self, mailbox: str) -> None:
        """Edit or delete an event the service wrote; the service must restore it."""
        written = [e for e in self.graph.events(mailbox) if is_service_event(e)]
        if not written:
            return
        target = self.rng.choice(sorted(written, key=lambda e: str(e["id"])))
        self.tampered += 1
        if self.rng.random() < 0.5:
            self.graph.update_event_as_person(mailbox, target["id"], {"subject": "Edited by me"})
        else:
            self.graph.delete_event_as_person(mailbox, target["id"])

    def expected_busy(self, staff_id: str) -> list[tuple[datetime, datetime, str]]:
        """The busy blocks Coconut should hold for this staff member's own events."""
        return sorted(
            (e.start, e.end, e.show_as)
            for e in self.own.get(staff_id, {}).values()
            if e.show_as in IMPORTED_SHOW_AS
        )
