"""A morning rush: many staff members' new bookings delivered at once, on one host.

For each concurrency, `staff x bookings` signed `appointment.created` webhooks go to the local
Functions host, that many at a time; the run ends when every booking is an event in Graph (or a
deadline passes). Measured: the host process's CPU time over the burst divided by the changes,
changes per second from the first delivery to the last event, the 202s' latency and timeouts,
and what was lost or duplicated (read back from the Graph emulator).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from benchmarks.percentiles import percentile
from benchmarks.plan import Plan
from benchmarks.report import Figure, Section, number
from benchmarks.stacks import running_stack
from benchmarks.staff import StaffMember, book, enrol, item_key, new_coconut, sender
from local.azurite import Azurite
from local.coconut_emulator.webhooks.payloads import Envelope
from local.graph_emulator.server import GraphEmulator
from local.stack import LocalStack
from sync.graph.calendar import COCONUT_ID_PROPERTY

TARGET_CPU_MS = 10.0
TARGET_RATE = 100.0
TARGET_202_P99 = 0.25


def host_cpu_seconds(stack: LocalStack) -> float:
    """User + system CPU time of the stack's host process so far."""
    assert stack.host is not None
    pid = stack.host.pid
    assert pid is not None
    return process_cpu_seconds(pid)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux `/proc`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def events_by_key(graph: GraphEmulator, mailboxes: list[str]) -> dict[str, int]:
    """Coconut item key -> how many events carry it, over the mailboxes."""
    counts: dict[str, int] = {}
    for mailbox in mailboxes:
        for event in graph.events(mailbox):
            for prop in event.get("singleValueExtendedProperties") or []:
                if str(prop.get("id", "")).lower() == COCONUT_ID_PROPERTY.lower():
                    key = str(prop.get("value"))
                    counts[key] = counts.get(key, 0) + 1
    return counts


async def _burst(
    stack: LocalStack, people: list[StaffMember], bookings: int, concurrency: int, deadline: float
) -> tuple[tuple[str, ...], list[Figure]]:
    coconut = new_coconut()
    envelopes: list[Envelope] = [
        book(coconut, person, 100 + number) for number in range(bookings) for person in people
    ]
    expected = {item_key(envelope) for envelope in envelopes}
    acks: list[float] = []
    timeouts = 0
    slots = asyncio.Semaphore(concurrency)
    async with sender(stack) as coconut_sender:
        cpu_before, started = host_cpu_seconds(stack), time.monotonic()

        async def deliver(envelope: Envelope) -> None:
            nonlocal timeouts
            async with slots:
                delivery = await coconut_sender.deliver(envelope)
            for attempt in delivery.attempts:
                if attempt.status is None:
                    timeouts += 1
                elif attempt.status == 202:
                    acks.append(attempt.elapsed_seconds)

        await asyncio.gather(*(deliver(e) for e in envelopes))
        mailboxes = [p.mailbox for p in people]
        while time.monotonic() - started < deadline:
            if expected <= events_by_key(stack.graph, mailboxes).keys():
                break
            await asyncio.sleep(0.1)
        seconds = time.monotonic() - started
        cpu = host_cpu_seconds(stack) - cpu_before
    held = events_by_key(stack.graph, mailboxes)
    lost = len(expected - held.keys())
    duplicated = sum(1 for key in expected if held.get(key, 0) > 1)
    changes = len(envelopes)
    cpu_ms = cpu * 1000 / changes
    rate = changes / seconds
    p99 = percentile(acks, 99)
    row = (
        str(concurrency),
        f"{len(people)} x {bookings}",
        number(cpu_ms),
        number(rate),
        f"{number(percentile(acks, 50))} / {number(p99)} / {number(max(acks, default=None))}",
        str(timeouts),
        f"{lost} / {duplicated}",
    )
    at = f"{concurrency} at a time"
    figures = [
        Figure(
            f"host CPU per change, {at}",
            cpu_ms,
            "ms",
            f"≤ {TARGET_CPU_MS:g} ms",
            cpu_ms <= TARGET_CPU_MS,
        ),
        Figure(
            f"changes per second, {at}", rate, "/s", f"≥ {TARGET_RATE:g}/s", rate >= TARGET_RATE
        ),
        Figure(f"202 p99, {at}", p99, "s", "", None),
        Figure(f"lost or duplicated, {at}", lost + duplicated, "", "0", lost + duplicated == 0),
    ]
    return row, figures


async def measure(azurite: Azurite, plan: Plan) -> Section:
    section = Section(
        "burst",
        "Burst: a morning rush on one host",
        method=(
            f"{plan.burst_staff} staff members (mailboxes resolved by a first booking each), "
            f"then {plan.burst_bookings} new bookings each, delivered N at a time to one local "
            "Functions host; host CPU is the process's user + system time over the burst; the "
            "rate runs from the first delivery until every booking is an event in Graph."
        ),
        table_header=(
            "at a time",
            "staff x bookings",
            "host CPU per change (ms)",
            "changes/s",
            "202 p50 / p99 / max (s)",
            "timeouts",
            "lost / duplicated",
        ),
    )
    async with running_stack(azurite, name="burst", log_dir=plan.log_dir) as stack:
        people = enrol(stack, plan.burst_staff)
        warm = new_coconut()
        async with sender(stack) as coconut_sender:
            await asyncio.gather(*(coconut_sender.deliver(book(warm, p, 0)) for p in people))
        await mailboxes_settled(stack, people)
        for concurrency in plan.burst_concurrency:
            row, figures = await _burst(
                stack, people, plan.burst_bookings, concurrency, plan.sync_timeout * 3
            )
            section.table_rows.append(row)
            section.figures += figures
    return section


async def mailboxes_settled(
    stack: LocalStack, people: list[StaffMember], within: float = 120.0
) -> None:
    """Wait until every staff member's first event is in Graph (their mailbox resolved)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if all(stack.graph.events(p.mailbox) for p in people):
            return
        await asyncio.sleep(0.2)
