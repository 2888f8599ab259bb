"""The final check: does every calendar hold exactly what Coconut's final state requires, and
does Coconut hold exactly the busy time the calendars require?

Expectations are derived from the Coconut model's final resources and the Outlook actor's record,
independently of the service's own rendering code: subject, instants, location and the customer
details in the body are compared field by field. The event Graph keeps failing on (`failing`:
staff id and item key) is left out of the comparison, and a mailbox Graph cannot serve must hold
no service event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaos.outlook import OutlookActor, coconut_key, is_service_event
from chaos.workload import Workload
from local.graph_emulator.server import GraphEmulator
from sync.imports.busy_time import external_id_for
from sync.timezones import mailbox_zone


@dataclass(frozen=True)
class ExpectedEvent:
    subject: str
    start: datetime
    end: datetime
    location: str
    body_parts: tuple[str, ...]


@dataclass(frozen=True)
class BusyDifference:
    """A busy block Coconut holds that no own event backs ("extra"), or one an own event needs
    that Coconut lacks ("missing"): which staff member, which external id, which times."""

    kind: str  # "extra" or "missing"
    staff_id: str
    external_id: str
    start: datetime
    end: datetime
    show_as: str
    event_id: str = ""  # the own event a missing block is for

    def line(self) -> str:
        return (
            f"busy block {self.kind}: {self.staff_id} {self.external_id[:19]}… "
            f"{self.start:%m-%dT%H:%M} to {self.end:%m-%dT%H:%M}Z {self.show_as}"
        )


@dataclass
class Verdict:
    expected_events: int = 0
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    expected_busy: int = 0
    missing_busy: int = 0
    extra_busy: int = 0
    busy: list[BusyDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.duplicates
            or self.unexpected
            or self.stale
            or self.missing_busy
            or self.extra_busy
        )

    def summary(self) -> str:
        return (
            f"events expected {self.expected_events}: missing {len(self.missing)}, "
            f"duplicates {len(self.duplicates)}, unexpected {len(self.unexpected)}, "
            f"stale {len(self.stale)}; busy blocks expected {self.expected_busy}: "
            f"missing {self.missing_busy}, extra {self.extra_busy}"
        )


def _instant(value: dict[str, str]) -> datetime:
    wall = datetime.fromisoformat(value["dateTime"][:19])
    return wall.replace(tzinfo=mailbox_zone(value["timeZone"])).astimezone(UTC)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def expected_events(workload: Workload) -> dict[tuple[str, str], ExpectedEvent]:
    """(staff id, item key) -> the event Coconut's final state requires in that calendar."""
    with_mailbox = {m.staff_id for m in workload.staff if m.has_mailbox}
    expected: dict[tuple[str, str], ExpectedEvent] = {}
    for appointment_id in sorted(workload.appointments - workload.cancelled):
        attributes = workload.coconut.appointment(appointment_id)["attributes"]
        virtual = attributes["meeting_method"] in (2, 3)
        location = attributes.get("location")
        notes = attributes.get("notes")
        parts: list[str] = [notes] if notes else []
        for attendee in attributes.get("attendees") or []:
            parts += [attendee["first_name"], attendee["last_name"]]
            parts += [v for v in (attendee.get("email"), attendee.get("cell_phone")) if v]
        event = ExpectedEvent(
            subject=attributes["service"]["name"],
            start=_parse(attributes["start"]),
            end=_parse(attributes["end"]),
            location="" if virtual or not location else location["address"],
            body_parts=tuple(parts),
        )
        for staff in attributes["staff"]:
            if staff["id"] in with_mailbox:
                expected[(staff["id"], f"appointment:{appointment_id}")] = event
    for absence_id in sorted(workload.absences):
        absence = workload.coconut.absence(absence_id)["attributes"]
        staff_id = absence["staff"]["id"]
        if staff_id in with_mailbox:
            expected[(staff_id, f"unavailability:{absence_id}")] = ExpectedEvent(
                subject=absence["title"],
                start=_parse(absence["start"]),
                end=_parse(absence["end"]),
                location="",
                body_parts=(),
            )
    return expected


def _stale_fields(event: dict[str, Any], want: ExpectedEvent) -> list[str]:
    wrong = []
    if event.get("subject") != want.subject:
        wrong.append("subject")
    if _instant(event["start"]) != want.start or _instant(event["end"]) != want.end:
        wrong.append("time")
    if (event.get("location") or {}).get("displayName", "") != want.location:
        wrong.append("location")
    if event.get("showAs") != "busy":
        wrong.append("showAs")
    body = (event.get("body") or {}).get("content", "")
    if any(part not in body for part in want.body_parts):
        wrong.append("body")
    if event.get("attendees"):
        wrong.append("attendees")
    return wrong


def verify(
    workload: Workload,
    actor: OutlookActor,
    graph: GraphEmulator,
    busy_blocks: dict[str, dict[str, dict[str, Any]]],
    *,
    failing: frozenset[tuple[str, str]] = frozenset(),
    unserved: dict[str, str] | None = None,
) -> Verdict:
    """`unserved`: staff id -> the mailbox of a user Graph cannot serve (it must stay empty)."""
    verdict = Verdict()
    expected = {k: v for k, v in expected_events(workload).items() if k not in failing}
    verdict.expected_events = len(expected)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for staff_id, mailbox in {**actor.mailboxes, **(unserved or {})}.items():
        for event in graph.events(mailbox):
            if is_service_event(event):
                found.setdefault((staff_id, coconut_key(event)), []).append(event)
    for key, want in expected.items():
        events = found.get(key, [])
        if not events:
            verdict.missing.append(f"{key[0]} {key[1]}")
            continue
        if len(events) > 1:
            verdict.duplicates.append(f"{key[0]} {key[1]} x{len(events)}")
        for event in events:
            if wrong := _stale_fields(event, want):
                verdict.stale.append(f"{key[0]} {key[1]}: {', '.join(wrong)}")
    verdict.unexpected = [f"{k[0]} {k[1]}" for k in found if k not in expected and k not in failing]

    for staff_id in actor.mailboxes:
        want_busy = actor.expected_busy_events(staff_id)
        verdict.expected_busy += len(want_busy)
        remaining = {
            external_id: (
                _parse(b["attributes"]["start"]),
                _parse(b["attributes"]["end"]),
                b["attributes"]["show_as"],
            )
            for external_id, b in busy_blocks.get(staff_id, {}).items()
        }
        for event_id, block in sorted(want_busy.items(), key=lambda pair: pair[1]):
            # Its own block first, else any block with the same times (as the counts go).
            own = external_id_for(event_id)
            candidates = [own, *sorted(remaining)]
            match = next((k for k in candidates if remaining.get(k) == block), None)
            if match is not None:
                del remaining[match]
                continue
            verdict.missing_busy += 1
            verdict.busy.append(
                BusyDifference("missing", staff_id, external_id_for(event_id), *block, event_id)
            )
        verdict.extra_busy += len(remaining)
        verdict.busy += [
            BusyDifference("extra", staff_id, external_id, *held)
            for external_id, held in sorted(remaining.items())
        ]
    return verdict
