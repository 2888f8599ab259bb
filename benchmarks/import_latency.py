"""Exchange change -> Coconut external event, with change notifications and with the timer only.

A person adds an event in Outlook (the Graph emulator's "as a person" API); the latency runs
until the Coconut emulator holds the matching busy block. With notifications the timer is hourly
(it never fires); without, it runs every `timer_period` seconds and each change is made at a
random moment of the period.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import httpx

from benchmarks.percentiles import summary
from benchmarks.plan import Plan
from benchmarks.report import COCONUT_PUBLISHED, Figure, Section, number
from benchmarks.settle import queue_drained
from benchmarks.stacks import running_stack
from benchmarks.staff import StaffMember, book, enrol, eventually, new_coconut, sender, slot
from local.azurite import REPO_ROOT, Azurite
from local.host.config import HostConfig
from local.stack import LocalStack

NOTIFIED_TARGET = 5.0


def _add_busy_time(stack: LocalStack, person: StaffMember, number: int) -> None:
    start, end = slot(200 + number)
    stack.graph.create_event_as_person(
        person.mailbox,
        {
            "subject": "Own appointment",
            "showAs": "busy",
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        },
    )


def _holds(stack: LocalStack, person: StaffMember, blocks: int) -> Callable[[], bool]:
    return lambda: len(stack.coconut.external_events(person.staff_id)) >= blocks


async def _samples(
    stack: LocalStack, person: StaffMember, count: int, spacing: float
) -> list[float]:
    latencies = []
    held = len(stack.coconut.external_events(person.staff_id))
    for sample in range(count):
        await asyncio.sleep(random.uniform(0, spacing))
        started = time.monotonic()
        _add_busy_time(stack, person, sample)
        held += 1
        await eventually(_holds(stack, person, held), within=120, interval=0.01)
        latencies.append(time.monotonic() - started)
    return latencies


async def _notified(azurite: Azurite, plan: Plan) -> list[float]:
    async with running_stack(
        azurite, notifications=True, name="import-notified", log_dir=plan.log_dir
    ) as stack:
        [person] = enrol(stack, 1)
        # A first sync (from a booking) resolves the mailbox and creates its subscription.
        async with sender(stack) as coconut_sender:
            await coconut_sender.deliver(book(new_coconut(), person, 0))

        def subscribed() -> bool:
            found = httpx.get(f"{stack.graph.control_url}/subscriptions").json()["value"]
            return any(person.mailbox in s["resource"] for s in found)

        await eventually(subscribed, within=60)
        await queue_drained(azurite)
        return await _samples(stack, person, plan.notified_samples, spacing=0.5)


async def _timer_only(azurite: Azurite, plan: Plan) -> list[float]:
    period = plan.timer_period
    async with running_stack(
        azurite,
        timer_schedule=f"*/{period} * * * * *",
        name="import-timer",
        log_dir=plan.log_dir,
    ) as stack:
        [person] = enrol(stack, 1)
        # The first timer sync runs the initial full round; measure from then on.
        _add_busy_time(stack, person, 999)
        await eventually(lambda: stack.coconut.external_events(person.staff_id), within=60)
        return await _samples(stack, person, plan.timer_samples, spacing=period)


async def measure(azurite: Azurite, plan: Plan) -> Section:
    period = plan.timer_period
    section = Section(
        "import",
        "Exchange change → Coconut busy time",
        method=(
            "One staff member on Coconut's roster with a mailbox; a person adds a busy event in "
            "Outlook, one at a time, and the latency runs until Coconut holds the busy block. "
            f"With change notifications: {plan.notified_samples} changes, timer hourly (never "
            f"fires). Without: {plan.timer_samples} changes, each at a random moment of a "
            f"{period} s timer period (`SYNC_TIMER_SCHEDULE=*/{period} * * * * *`; production "
            "runs every 5 minutes)."
        ),
        table_header=("mode", "changes", "p50 (s)", "p95 (s)", "p99 (s)", "max (s)"),
    )
    notified = summary(await _notified(azurite, plan))
    timer = summary(await _timer_only(azurite, plan))
    for mode, stats, count in (
        ("change notifications", notified, plan.notified_samples),
        (f"timer only, every {period} s", timer, plan.timer_samples),
    ):
        section.table_rows.append(
            (
                mode,
                str(count),
                *(number(stats[k]) for k in ("p50", "p95", "p99", "max")),
            )
        )
    p99 = notified["p99"]
    worst = timer["max"]
    # A change made just after a tick waits for the next one, then for the queue listener's
    # next poll (host.json `maxPollingInterval`) before its sync starts.
    polling = HostConfig.load(REPO_ROOT).queues.max_polling_interval
    bound = period + polling
    section.figures += [
        Figure(
            "Exchange → Coconut p99, notifications on",
            p99,
            "s",
            f"≤ {NOTIFIED_TARGET:g} s",
            p99 is not None and p99 <= NOTIFIED_TARGET,
            COCONUT_PUBLISHED,
        ),
        Figure(
            f"Exchange → Coconut max, timer only (period {period} s)",
            worst,
            "s",
            f"≤ one timer period + the queue's polling interval ({bound:g} s)",
            worst is not None and worst <= bound,
            COCONUT_PUBLISHED,
        ),
        Figure("Exchange → Coconut p50, timer only", timer["p50"], "s"),
    ]
    section.notes.append(
        "Without notifications a change waits for the next timer tick, then for the queue "
        "listener to pick the sync up (it polls at most every `maxPollingInterval` when idle, "
        f"{polling:g} s in host.json), then for the sync itself."
    )
    return section
