"""Webhook 202 -> event visible in Graph, at steady webhook rates.

Signed webhooks (each a new booking, round-robin over the staff) go out on a fixed schedule;
the Graph emulator's memory is polled in-process every 20 ms for each event's appearance.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from benchmarks.percentiles import percentile, summary
from benchmarks.plan import Plan
from benchmarks.report import Figure, Section, number
from benchmarks.stacks import running_stack
from benchmarks.staff import (
    StaffMember,
    book,
    enrol,
    eventually,
    item_key,
    new_coconut,
    sender,
    synced_keys,
)
from local.azurite import Azurite
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.delivery import WebhookSender
from local.coconut_emulator.webhooks.payloads import Envelope
from local.stack import LocalStack

POLL_SECONDS = 0.02
TARGET_P99 = 2.0
TARGET_RATE = 10
# Webhook intake stays responsive while the worker drains the backlog it is taking in.
INTAKE_RATE = 100.0
INTAKE_P99 = 0.25


class Timings:
    def __init__(self) -> None:
        self.acked: dict[str, float] = {}
        self.ack_seconds: list[float] = []
        self.seen: dict[str, float] = {}
        self.failed = 0


async def _watch(stack: LocalStack, expected: dict[str, str], timings: Timings) -> None:
    """Record when each expected event first shows up (key -> mailbox)."""
    while len(timings.seen) < len(expected):
        now = time.monotonic()
        waiting = {mailbox for key, mailbox in expected.items() if key not in timings.seen}
        for mailbox in waiting:
            for key in synced_keys(stack.graph, mailbox):
                if key in expected and key not in timings.seen:
                    timings.seen[key] = now
        await asyncio.sleep(POLL_SECONDS)


async def _send_at_rate(
    coconut_sender: WebhookSender,
    coconut: Coconut,
    people: list[StaffMember],
    rate: float,
    seconds: float,
    timings: Timings,
    expected: dict[str, str],
) -> float:
    count = max(2, round(rate * seconds))
    envelopes = [book(coconut, people[i % len(people)], 1 + i) for i in range(count)]
    for envelope, i in zip(envelopes, range(count), strict=True):
        expected[item_key(envelope)] = people[i % len(people)].mailbox

    async def deliver_one(envelope: Envelope) -> None:
        delivery = await coconut_sender.deliver(envelope)
        if delivery.status != 202:
            timings.failed += 1
            return
        timings.acked[item_key(envelope)] = time.monotonic()
        timings.ack_seconds.append(delivery.attempts[-1].elapsed_seconds)

    started = time.monotonic()
    tasks = []
    for i, envelope in enumerate(envelopes):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(deliver_one(envelope)))
    last_sent = time.monotonic()
    await asyncio.gather(*tasks)
    return (count - 1) / (last_sent - started) if last_sent > started else float(count)


async def measure(azurite: Azurite, plan: Plan) -> Section:
    section = Section(
        "webhooks",
        "Webhook 202 → event visible in Graph",
        method=(
            f"{plan.webhook_staff} staff members, each with a mailbox that already holds one "
            "synced appointment (mailbox resolved: steady state). Signed `appointment.created` "
            "webhooks go to the local Functions host at a fixed rate, round-robin over the staff; "
            "latency runs from the 202 to the moment the event is in the Graph emulator (its "
            f"memory polled every {POLL_SECONDS * 1000:.0f} ms)."
        ),
        table_header=(
            "rate (/s)",
            "webhooks",
            "achieved rate (/s)",
            "202 p50 / p99 (s)",
            "p50 (s)",
            "p95 (s)",
            "p99 (s)",
            "max (s)",
        ),
    )
    async with running_stack(azurite, name="webhooks", log_dir=plan.log_dir) as stack:
        people = enrol(stack, plan.webhook_staff)
        coconut = new_coconut()
        async with sender(stack) as coconut_sender:
            warm = [book(coconut, person, 0) for person in people]
            await asyncio.gather(*(coconut_sender.deliver(e) for e in warm))
            await eventually(
                lambda: all(
                    item_key(e) in synced_keys(stack.graph, p.mailbox)
                    for e, p in zip(warm, people, strict=True)
                ),
                within=120,
            )
            for rate, seconds in plan.webhook_rates:
                timings = Timings()
                expected: dict[str, str] = {}
                watcher = asyncio.create_task(_watch(stack, expected, timings))
                achieved = await _send_at_rate(
                    coconut_sender, coconut, people, rate, seconds, timings, expected
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watcher, timeout=plan.sync_timeout)
                lost = len(expected) - len(timings.seen)
                latencies = [
                    max(0.0, timings.seen[key] - acked)
                    for key, acked in timings.acked.items()
                    if key in timings.seen
                ]
                stats = summary(latencies)
                section.table_rows.append(
                    (
                        f"{rate:g}",
                        str(len(expected)),
                        number(achieved),
                        f"{number(percentile(timings.ack_seconds, 50))} / "
                        f"{number(percentile(timings.ack_seconds, 99))}",
                        number(stats["p50"]),
                        number(stats["p95"]),
                        number(stats["p99"]),
                        number(stats["max"]),
                    )
                )
                if timings.failed:
                    section.notes.append(f"at {rate:g}/s, {timings.failed} webhooks failed")
                if rate >= INTAKE_RATE:
                    # Intake while the worker drains what arrived: Coconut must get its 202 fast.
                    acked_p99 = percentile(timings.ack_seconds, 99)
                    section.figures.append(
                        Figure(
                            f"202 p99 at {rate:g}/s while the worker drains",
                            acked_p99,
                            "s",
                            f"≤ {INTAKE_P99 * 1000:g} ms at {INTAKE_RATE:g}/s",
                            acked_p99 is not None and acked_p99 <= INTAKE_P99,
                        )
                    )
                section.figures.append(
                    Figure(
                        f"events never in Graph ({plan.sync_timeout:g} s after the last 202) "
                        f"at {rate:g}/s",
                        lost,
                        f"of {len(expected)}",
                        "0",
                        lost == 0,
                    )
                )
                for p in (50, 95, 99):
                    value = stats[f"p{p}"]
                    target = ""
                    met = None
                    if rate == TARGET_RATE and p == 99:
                        target = f"≤ {TARGET_P99:g} s at {TARGET_RATE}/s"
                        met = value is not None and value <= TARGET_P99
                    section.figures.append(
                        Figure(f"webhook → Graph p{p} at {rate:g}/s", value, "s", target, met)
                    )
    section.notes.append(
        "p99 of a sample of n is reported as the inclusive 99th percentile; with n < 100 it "
        "is close to the maximum."
    )
    section.notes.append(
        "Storage is Azurite's table and queue services, each in a process of its own, the "
        "queue's messages in a folder: Azurite's in-memory queue blocked every storage request "
        "for 1.2-1.8 s once a minute at 100 webhooks/s, which Azure Storage does not "
        "(`local/azurite.py`)."
    )
    return section
