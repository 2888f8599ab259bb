"""A seeded random stream of Coconut changes over a set of staff (pure: no I/O).

It drives the Coconut emulator's own model (`local.coconut_emulator.webhooks.coconut.Coconut`),
so every envelope is what Coconut would send; this module only decides what happens next and
remembers which items exist, for the final check. Bound to the API emulator's record, every
change is in Coconut's listings the moment it happens, whether its webhook arrives or not.

Everything here is a function of the seed alone: the same seed gives the same staff, the same
changes in the same order, with the same ids.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from local.coconut_emulator.record import CoconutRecord
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut

TIME_ZONES = (
    "Eastern Standard Time",
    "Pacific Standard Time",
    "W. Europe Standard Time",
    "America/Toronto",
)
SERVICES = [
    payloads.service(f"S-{n}", name)
    for n, name in enumerate(
        ["Opening an account", "Mortgage review", "Investment advice", "Business banking"]
    )
]
BRANCHES = [
    payloads.location("L-1", "Downtown", "100 King St W, Toronto, ON"),
    payloads.location("L-2", "Uptown", "2300 Yonge St, Toronto, ON"),
]


# Where a staff member's calendar lives: a mailbox Graph serves, a directory user whose mailbox
# Graph cannot serve (on-premises, unlicensed: 404 MailboxNotEnabledForRESTAPI), or no
# Microsoft 365 user at all.
MailboxKind = Literal["enabled", "not enabled", "no user"]


@dataclass(frozen=True)
class StaffMember:
    staff_id: str
    email: str
    time_zone: str
    mailbox: MailboxKind = "enabled"

    @property
    def has_mailbox(self) -> bool:
        """Whether the service can write this staff member's calendar."""
        return self.mailbox == "enabled"

    @property
    def ref(self) -> payloads.StaffRef:
        return payloads.staff_member(self.staff_id, self.email, "Staff", self.staff_id)


@dataclass
class Workload:
    """Coconut's side of the run: staff, and the appointments/absences alive or deleted."""

    seed: int
    staff: list[StaffMember]
    rng: random.Random
    coconut: Coconut
    appointments: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    absences: set[str] = field(default_factory=set)
    deleted_absences: set[str] = field(default_factory=set)
    changes: int = 0

    @classmethod
    def create(
        cls, seed: int, staff_count: int, tag: str, record: CoconutRecord | None = None
    ) -> Workload:
        rng = random.Random(seed)
        staff = [
            StaffMember(
                staff_id=f"U-{tag}-{n}",
                email=f"staff{n}.{tag}@bank.example",
                time_zone=TIME_ZONES[n % len(TIME_ZONES)],
                mailbox=_mailbox_kind(n, staff_count),
            )
            for n in range(staff_count)
        ]
        coconut = Coconut(first_appointment_number=rng.randrange(10**8), record=record)
        return cls(seed, staff, rng, coconut)

    def wanted_in(self, staff_id: str) -> list[str]:
        """The item keys whose events this staff member's calendar should hold now."""
        keys = []
        for appointment_id in sorted(self.appointments - self.cancelled):
            staff = self.coconut.appointment(appointment_id)["attributes"]["staff"]
            if any(s["id"] == staff_id for s in staff):
                keys.append(f"appointment:{appointment_id}")
        for absence_id in sorted(self.absences):
            if self.coconut.absence(absence_id)["attributes"]["staff"]["id"] == staff_id:
                keys.append(f"unavailability:{absence_id}")
        return keys

    def _when(self) -> tuple[datetime, datetime]:
        day = datetime.now(UTC).replace(hour=13, minute=0, second=0, microsecond=0)
        start = day + timedelta(days=self.rng.randrange(1, 60), minutes=30 * self.rng.randrange(16))
        return start, start + timedelta(minutes=self.rng.choice((30, 45, 60, 90)))

    def _staff(self) -> list[payloads.StaffRef]:
        count = 2 if self.rng.random() < 0.2 else 1
        return [m.ref for m in self.rng.sample(self.staff, count)]

    def _attendee(self) -> payloads.Attendee:
        n = self.rng.randrange(10**6)
        return payloads.attendee(
            f"C-{n}",
            f"First{n}",
            f"Last{n}",
            email=f"customer{n}@example.com",
            cell_phone=f"+1 416 555 {n % 10000:04d}",
            phone="+1 416 555 9999",
            notes=f"note {n}",
            answers=[payloads.answer("Account type?", self.rng.choice(["Chequing", "Savings"]))],
        )

    def next_change(self) -> payloads.Envelope:
        """One more Coconut change, as the envelope Coconut sends."""
        self.changes += 1
        live = sorted(self.appointments - self.cancelled)
        roll = self.rng.random()
        if not live or roll < 0.25:
            return self._book()
        target = self.rng.choice(live)
        if roll < 0.40:
            start, end = self._when()
            return self.coconut.reschedule(target, start, end)
        if roll < 0.50:
            return self.coconut.add_attendee(target, self._attendee())
        if roll < 0.55:
            return self.coconut.change_notes(target, f"notes revision {self.changes}")
        if roll < 0.62:
            method = self.rng.choice((payloads.AT_LOCATION, payloads.VIDEO_CALL))
            place = self.rng.choice(BRANCHES) if method == payloads.AT_LOCATION else None
            return self.coconut.change_location(target, place, meeting_method=method)
        if roll < 0.72:
            return self.coconut.reassign(target, self._staff())
        if roll < 0.78:
            self.cancelled.add(target)
            return self.coconut.cancel(target)
        if roll < 0.83:
            self.appointments.discard(target)
            self.deleted.add(target)
            return self.coconut.delete(target)
        return self._absence_change()

    def _book(self) -> payloads.Envelope:
        start, end = self._when()
        virtual = self.rng.random() < 0.25
        envelope = self.coconut.book(
            staff=self._staff(),
            start=start,
            end=end,
            service=self.rng.choice(SERVICES),
            meeting_method=payloads.VIDEO_CALL if virtual else payloads.AT_LOCATION,
            location=None if virtual else self.rng.choice(BRANCHES),
            attendees=[self._attendee() for _ in range(self.rng.randrange(3))],
            notes=self.rng.choice([None, "Customer prefers French."]),
        )
        self.appointments.add(envelope["data"]["id"])
        return envelope

    def _absence_change(self) -> payloads.Envelope:
        live = sorted(self.absences)
        if live and self.rng.random() < 0.5:
            target = self.rng.choice(live)
            if self.rng.random() < 0.4:
                self.absences.discard(target)
                self.deleted_absences.add(target)
                return self.coconut.delete_absence(target)
            return self.coconut.change_absence(target, title=f"Leave {self.changes}")
        start, _ = self._when()
        start = start.replace(hour=0, minute=0)
        member = self.rng.choice(self.staff)
        envelope = self.coconut.record_absence(
            staff=member.ref,
            start=start,
            end=start + timedelta(days=self.rng.choice((1, 5, 21))),
            title="Vacation",
            absence_id=f"N-{self.seed}-{self.changes}",
        )
        self.absences.add(envelope["data"]["id"])
        return envelope


def _mailbox_kind(n: int, staff_count: int) -> MailboxKind:
    """The last staff member has no Microsoft 365 user, the one before a mailbox Graph cannot
    serve: their items sync nowhere, and their statuses must say why."""
    if n == staff_count - 1:
        return "no user"
    if n == staff_count - 2:
        return "not enabled"
    return "enabled"
