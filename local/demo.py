"""The README's first command: the whole product on the local stack, one readable step at a time.

Starts Azurite and the Graph and Coconut emulators, gives one staff member appointments in
Coconut before the service is connected, then starts the local Functions host: her appointments
arrive from Coconut's own record, and a change whose webhook is lost is repaired by the scheduled
read of that record (`COCONUT_RECONCILE_SCHEDULE`). Then it plays a short scenario as Coconut
(signed webhooks) and as a staff member in Outlook (the Graph emulator's "person" edits), printing
after each step what every staff member's Outlook calendar and Coconut busy time hold. It ends
with the staff status table an administrator sees (`python -m sync.ops status`, read through the
ops API).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.delivery import Backoff, WebhookSender
from local.stack import WEBHOOK_SECRET, LocalStack
from local.trace_view import trace_tree, traces_with
from sync.graph.calendar import COCONUT_ID_PROPERTY
from sync.ops.cli import counts_line, detail_table, staff_table
from sync.ops.client import OpsClient
from sync.trace_file import TRACE_FILE_SETTING, read_spans

TORONTO = ZoneInfo("America/Toronto")
console = Console()
# The demo's schedules: the periodic sync every 10 s, the scheduled repair five seconds after it.
TIMER_SCHEDULE = "*/10 * * * * *"
RECONCILE_SCHEDULE = "5/10 * * * * *"
# The ops detail's fields about Coconut's listings (`python -m sync.ops show`).
LISTING_FIELDS = (
    "staff_id",
    "status",
    "listed_at",
    "repaired_at",
    "repaired_created",
    "repaired_updated",
    "repaired_removed",
)


@dataclass(frozen=True)
class Staff:
    coconut: payloads.StaffRef
    upn: str
    time_zone: str
    mailbox_id: str = ""

    @property
    def name(self) -> str:
        return f"{self.coconut['first_name']} {self.coconut['last_name']}"


def _is_service_event(event: dict[str, Any]) -> bool:
    props = event.get("singleValueExtendedProperties") or []
    return any(p.get("id", "").lower() == COCONUT_ID_PROPERTY.lower() for p in props)


def _span(start: dict[str, str], end: dict[str, str], zone: ZoneInfo) -> str:
    first, last = _local(start, zone), _local(end, zone)
    same_day = first[:10] == last[:10]
    return f"{first} to {last[-5:] if same_day else last}"


def _local(value: dict[str, str], zone: ZoneInfo) -> str:
    moment = datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%a %d %b %H:%M")


class Demo:
    def __init__(self, stack: LocalStack, wait: float) -> None:
        self.stack = stack
        self.wait = wait
        self.coconut = Coconut()
        self.staff: list[Staff] = []

    def add_staff(self, user_id: str, first: str, last: str, time_zone: str) -> Staff:
        email = f"{first.lower()}.{last.lower()}@bank.example"
        ref = payloads.staff_member(user_id, email, first, last)
        upn = f"{first.lower()}@bank.onmicrosoft.com"
        user = self.stack.graph.add_user(upn, mail=email, time_zone=time_zone)
        self.stack.coconut.add_user(user_id, email, first, last, calendar_sync=True)
        member = Staff(ref, upn, time_zone, user.id)
        self.staff.append(member)
        return member

    async def send(self, envelope: Mapping[str, Any]) -> None:
        backoff = Backoff(first_delay=0.5, max_delay=5.0, max_attempts=10)
        # Coconut sends webhooks about changes to its own record: the record changes too.
        async with WebhookSender(
            self.stack.webhook_url,
            WEBHOOK_SECRET,
            backoff=backoff,
            record=self.stack.coconut.record,
        ) as out:
            delivery = await out.deliver(envelope)
        if not delivery.delivered:
            raise RuntimeError(f"webhook answered {delivery.status}")

    def calendar(self, member: Staff) -> list[dict[str, Any]]:
        return sorted(
            self.stack.graph.events(member.mailbox_id), key=lambda e: str(e["start"]["dateTime"])
        )

    def busy(self, member: Staff) -> list[dict[str, Any]]:
        held = self.stack.coconut.external_events(member.coconut["id"]).values()
        return sorted(held, key=lambda e: str(e["attributes"]["start"]))

    def settle(self, expectation: Callable[[], bool], wait: float | None = None) -> bool:
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        while time.monotonic() < deadline:
            if expectation():
                return True
            time.sleep(0.2)
        return expectation()

    def show(self, title: str, settled: bool) -> None:
        mark = "[green]in step[/green]" if settled else "[yellow]still syncing[/yellow]"
        table = Table(title=f"{title} — {mark}", title_justify="left", expand=True)
        table.add_column("Staff member", style="bold")
        table.add_column("Outlook calendar (mailbox time zone)")
        table.add_column("Coconut busy time (UTC)")
        for member in self.staff:
            zone = ZoneInfo(_iana(member.time_zone))
            outlook = [
                f"{_span(e['start'], e['end'], zone)} {e['subject']}"
                + ("" if _is_service_event(e) else " [dim](own)[/dim]")
                for e in self.calendar(member)
            ]
            busy = [
                f"{e['attributes']['start'][5:16]} to {e['attributes']['end'][11:16]} "
                f"{e['attributes']['title']} ({e['attributes']['show_as']})"
                for e in self.busy(member)
            ]
            table.add_row(
                f"{member.name}\n[dim]{member.time_zone}[/dim]",
                "\n".join(outlook) or "[dim]—[/dim]",
                "\n".join(busy) or "[dim]—[/dim]",
            )
        console.print(table)

    def show_first_trace(self) -> None:
        """The booking's one trace: webhook, worker run, Graph calls (Application Insights'
        end-to-end transaction view, locally)."""
        path = Path(self.stack.extra_settings[TRACE_FILE_SETTING])

        def run_finished() -> bool:
            spans = read_spans(path)
            return any(
                s["name"] == "staff_worker"
                and s["trace_id"] in traces_with(spans, "coconut_webhook")
                for s in spans
            )

        self.settle(run_finished)
        spans = read_spans(path)
        for trace_id in traces_with(spans, "coconut_webhook")[:1]:
            console.print("One trace for this change: webhook → queue → worker run → its calls")
            console.print(trace_tree(spans, trace_id))
            console.print(
                f"[dim]The host log's lines of this change end in trace={trace_id}.[/dim]\n"
            )

    def count(self, member: Staff, subject: str | None = None) -> int:
        return sum(
            1
            for e in self.calendar(member)
            if _is_service_event(e) and (subject is None or e["subject"] == subject)
        )


def _iana(name: str) -> str:
    from sync.timezones import mailbox_zone

    return str(mailbox_zone(name).key)


@dataclass(frozen=True)
class AlreadyBooked:
    """What Coconut held for a staff member before the service was connected."""

    member: Staff
    review: str  # the appointment whose webhook will be lost
    review_start: datetime
    items: int


def next_monday(now: datetime) -> datetime:
    """Next Monday, 09:00 in Toronto: inside the listings' window whenever the demo runs."""
    today = now.astimezone(TORONTO).replace(hour=9, minute=0, second=0, microsecond=0)
    return today + timedelta(days=7 - today.weekday())


def book_before_connecting(demo: Demo) -> AlreadyBooked:
    """Priya's appointments and absence, made in Coconut before the service is connected: no
    webhook was ever sent for them (the emulator's record changes without one)."""
    priya = demo.add_staff("U-44", "Priya", "Shah", "Eastern Standard Time")
    coconut = demo.stack.coconut
    monday = next_monday(datetime.now(UTC))
    review = coconut.book(
        staff=[priya.coconut["id"]],
        start=monday,
        end=monday + timedelta(hours=1),
        service=payloads.service("S-11", "Retirement planning"),
        location=payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9"),
        attendees=[payloads.attendee("C-21", "Lee", "Wong", email="lee.wong@example.com")],
    )
    wednesday = monday + timedelta(days=2, hours=5)
    coconut.book(
        staff=[priya.coconut["id"]],
        start=wednesday,
        end=wednesday + timedelta(minutes=45),
        service=payloads.service("S-12", "Mortgage renewal"),
        meeting_method=payloads.VIDEO_CALL,
    )
    friday = (monday + timedelta(days=4)).replace(hour=0)
    coconut.record_absence(
        staff=priya.coconut["id"],
        start=friday,
        end=friday + timedelta(days=1),
        title="Training day",
        all_day=True,
    )
    return AlreadyBooked(priya, review["data"]["id"], monday, items=3)


async def repair_a_lost_webhook(demo: Demo, booked: AlreadyBooked) -> None:
    """Priya's existing appointments arrive; then a change whose webhook never arrives is
    repaired by the scheduled read of Coconut's record."""
    priya = booked.member
    demo.show(
        "1. Connect the service: Priya's appointments, already in Coconut, arrive "
        "(read from Coconut's record, no webhook)",
        demo.settle(lambda: demo.count(priya) == booked.items),
    )

    later = booked.review_start + timedelta(hours=2, minutes=30)
    demo.stack.coconut.update_appointment(
        booked.review, start=later, end=later + timedelta(hours=1)
    )
    demo.show(
        "2. In Coconut, Priya's retirement planning moves to 11:30 and its webhook is lost: "
        "Outlook still shows 09:00",
        settled=False,
    )

    def moved() -> bool:
        return any(
            _local(e["start"], TORONTO).endswith("11:30") and e["subject"] == "Retirement planning"
            for e in demo.calendar(priya)
        )

    demo.show(
        f"3. The scheduled repair ({RECONCILE_SCHEDULE!r}) reads Coconut's record and moves it",
        demo.settle(moved, wait=demo.wait * 2),
    )
    assert demo.stack.host is not None
    with OpsClient(demo.stack.host.base_url) as ops:
        detail = ops.detail(priya.coconut["id"])
    shown = {name: detail[name] for name in LISTING_FIELDS}
    console.print(detail_table(shown))
    console.print(
        "[dim]python -m sync.ops show U-44: when Coconut's record was last read and what the "
        "last scheduled repair mended (each repair is also counted in the "
        "lost_webhooks_repaired metric).[/dim]\n"
    )


async def play(demo: Demo, already: AlreadyBooked) -> None:
    await repair_a_lost_webhook(demo, already)
    jane = demo.add_staff("U-42", "Jane", "Doe", "Eastern Standard Time")
    omar = demo.add_staff("U-43", "Omar", "Ali", "Pacific Standard Time")
    sam = payloads.attendee(
        "C-9", "Sam", "Lee", email="sam.lee@example.com", cell_phone="+1 416 555 0100"
    )
    branch = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")
    monday = datetime(2026, 12, 7, 10, 0, tzinfo=TORONTO)

    booked = demo.coconut.book(
        staff=[jane.coconut],
        start=monday,
        end=monday + timedelta(minutes=30),
        service=payloads.service("S-7", "Opening an account"),
        location=branch,
        attendees=[sam],
        notes="Customer prefers French.",
    )
    appointment = booked["data"]["id"]
    await demo.send(booked)
    demo.show("4. Book an appointment with Jane", demo.settle(lambda: demo.count(jane) == 1))
    demo.show_first_trace()

    later = monday + timedelta(hours=4)
    await demo.send(demo.coconut.reschedule(appointment, later, later + timedelta(minutes=45)))
    demo.show(
        "5. Reschedule it to the afternoon",
        demo.settle(
            lambda: any(_local(e["start"], TORONTO).endswith("14:00") for e in demo.calendar(jane))
        ),
    )

    ana = payloads.attendee("C-10", "Ana", "Ruiz", email="ana.ruiz@example.com")
    await demo.send(demo.coconut.add_attendee(appointment, ana))
    demo.show(
        "6. Add an attendee (listed in the description, never invited)",
        demo.settle(lambda: any("Ana" in e["body"]["content"] for e in demo.calendar(jane))),
    )

    await demo.send(demo.coconut.reassign(appointment, [omar.coconut]))
    demo.show(
        "7. Reassign it to Omar",
        demo.settle(lambda: demo.count(jane) == 0 and demo.count(omar) == 1),
    )

    tuesday = monday + timedelta(days=1)
    team = demo.coconut.book(
        staff=[jane.coconut, omar.coconut],
        start=tuesday,
        end=tuesday + timedelta(hours=1),
        service=payloads.service("S-9", "Business banking review"),
        location=branch,
    )
    await demo.send(team)
    demo.show(
        "8. Book a multi-staff appointment",
        demo.settle(
            lambda: (
                demo.count(jane, "Business banking review") == 1
                and demo.count(omar, "Business banking review") == 1
            )
        ),
    )

    vacation_start = datetime(2026, 12, 21, tzinfo=TORONTO)
    await demo.send(
        demo.coconut.record_absence(
            staff=jane.coconut,
            start=vacation_start,
            end=vacation_start + timedelta(weeks=3),
            title="Vacation",
            all_day=True,
        )
    )
    demo.show(
        "9. Record a three-week absence for Jane",
        demo.settle(lambda: demo.count(jane, "Vacation") == 1),
    )

    wednesday = monday + timedelta(days=2)
    demo.stack.graph.create_event_as_person(
        omar.mailbox_id,
        {
            "subject": "Dentist",
            "showAs": "busy",
            "start": {
                "dateTime": wednesday.strftime("%Y-%m-%dT13:00:00"),
                "timeZone": "Eastern Standard Time",
            },
            "end": {
                "dateTime": wednesday.strftime("%Y-%m-%dT14:00:00"),
                "timeZone": "Eastern Standard Time",
            },
        },
    )
    demo.show(
        "10. Omar adds his own busy time in Outlook (imported as 'Busy', nothing else)",
        demo.settle(lambda: len(demo.busy(omar)) >= 1),
    )

    await demo.send(demo.coconut.cancel(appointment))
    demo.show(
        "11. Cancel the first appointment",
        demo.settle(lambda: demo.count(omar, "Opening an account") == 0),
    )


def show_staff_status(stack: LocalStack) -> None:
    """The administrator's view, as `python -m sync.ops status` prints it."""
    assert stack.host is not None
    with OpsClient(stack.host.base_url) as ops:
        overview = ops.staff()
    console.print(staff_table(overview, "12. Staff status (python -m sync.ops status)"))
    console.print(counts_line(overview["counts"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__)
    parser.add_argument("--wait", type=float, default=20.0, help="seconds to wait per step")
    parser.add_argument("--host-log", type=Path, default=Path(".local-data/host.log"))
    args = parser.parse_args(argv)
    args.host_log.parent.mkdir(parents=True, exist_ok=True)
    args.host_log.write_text("")
    spans = args.host_log.with_name("spans.jsonl")
    spans.write_text("")
    console.print("[bold]Starting Azurite and the Graph and Coconut emulators…[/bold]")
    # A fast timer so Outlook changes also arrive without change notifications, and a fast
    # scheduled repair so a lost webhook is mended within seconds.
    stack = LocalStack(
        timer_schedule=TIMER_SCHEDULE,
        notifications=True,
        host_log=args.host_log,
        extra_settings={
            TRACE_FILE_SETTING: str(spans),
            "COCONUT_RECONCILE_SCHEDULE": RECONCILE_SCHEDULE,
        },
    )
    try:
        stack.azurite.start()
        stack.graph.start()
        stack.coconut.start()
        demo = Demo(stack, args.wait)
        already = book_before_connecting(demo)
        console.print(
            "Priya Shah already has two appointments and an absence in Coconut; "
            "[bold]now the host starts[/bold]…"
        )
        host = stack.start_host()
        console.print(
            f"Local host healthy at {host.base_url}/api/health; "
            f"Graph emulator {stack.graph.base_url}; Coconut emulator {stack.coconut.base_url}; "
            f"host log {args.host_log}\n"
        )
        asyncio.run(play(demo, already))
        show_staff_status(stack)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
