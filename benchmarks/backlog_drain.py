"""Backlog drain under a small per-mailbox throttle limit, for 1, 10 and 100 mailboxes.

The Graph emulator limits each mailbox to `limit` requests per `window` seconds (sliding), and
the host is set to the same limit (`GRAPH_MAILBOX_REQUESTS_PER_WINDOW`,
`GRAPH_MAILBOX_WINDOW_SECONDS`), as a bank's deployment knows Graph's. Each mailbox first holds
one synced appointment (resolved, steady state); after one quiet window (both sides' counts
empty), `creates` bookings per mailbox are posted at once. The drain ends when every event is in
its mailbox.

Fraction of the ceiling: a perfect client that sends only the creates, all at once, needs
`window * floor((creates - 1) / limit)` seconds under a sliding window (the first `limit` go at
once, the next ones each time the window frees); the fraction is that minimum over the measured
time from the first webhook to the last event. Extra requests (reads, refused attempts) lower it.
"""

from __future__ import annotations

import asyncio
import math
import time

from benchmarks.plan import DrainCase, Plan
from benchmarks.report import Figure, Section, number
from benchmarks.settle import queue_drained
from benchmarks.stacks import running_stack
from benchmarks.staff import (
    book,
    difference,
    enrol,
    eventually,
    graph_requests,
    item_key,
    new_coconut,
    sender,
    synced_keys,
    total_requests,
)
from local.azurite import Azurite
from local.graph_emulator.throttling import ThrottleLimits

TARGET_FRACTION = 0.90
TARGET_THROTTLED = 0.01
TARGET_REQUESTS_PER_CREATE = 1.1
POST_CONCURRENCY = 16


def minimum_seconds(case: DrainCase) -> float:
    return case.window * math.floor((case.creates - 1) / case.limit)


class DrainResult:
    def __init__(self, case: DrainCase, seconds: float, post_seconds: float) -> None:
        self.case = case
        self.seconds = seconds
        self.post_seconds = post_seconds
        self.requests = 0
        self.throttled = 0

    @property
    def fraction(self) -> float:
        return minimum_seconds(self.case) / self.seconds

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.requests if self.requests else 0.0


async def _drain(azurite: Azurite, plan: Plan, case: DrainCase) -> DrainResult:
    limits = ThrottleLimits(requests_per_window=case.limit, window_seconds=case.window)
    async with running_stack(
        azurite, name=f"drain-{case.mailboxes}", log_dir=plan.log_dir, limits=limits
    ) as stack:
        people = enrol(stack, case.mailboxes)
        coconut = new_coconut()
        async with sender(stack) as coconut_sender:
            warm = [book(coconut, person, 0) for person in people]
            slots = asyncio.Semaphore(POST_CONCURRENCY)

            async def post(envelope: dict[str, object]) -> None:
                async with slots:
                    await coconut_sender.deliver(envelope)

            await asyncio.gather(*(post(e) for e in warm))  # type: ignore[arg-type]
            await queue_drained(azurite, within=300)
            await asyncio.sleep(case.window)  # a quiet window: the backlog starts on empty counts
            before = {p.mailbox: graph_requests(stack.graph, p.mailbox) for p in people}
            backlog = {
                person.mailbox: [book(coconut, person, 1 + n) for n in range(case.creates)]
                for person in people
            }
            wanted = {m: {item_key(e) for e in envelopes} for m, envelopes in backlog.items()}
            # Interleave the mailboxes, as a busy branch network would.
            order = [backlog[p.mailbox][n] for n in range(case.creates) for p in people]
            started = time.monotonic()
            await asyncio.gather(*(post(e) for e in order))  # type: ignore[arg-type]
            posted = time.monotonic() - started

            def drained() -> bool:
                return all(wanted[m] <= synced_keys(stack.graph, m).keys() for m in wanted)

            await eventually(drained, within=600, interval=0.05)
            result = DrainResult(case, time.monotonic() - started, posted)
        for person in people:
            counts = difference(graph_requests(stack.graph, person.mailbox), before[person.mailbox])
            result.requests += total_requests(counts)
            result.throttled += counts.get("429", 0)
    return result


async def measure(azurite: Azurite, plan: Plan) -> Section:
    section = Section(
        "backlog",
        "Backlog drain under throttling",
        method=__doc__ or "",
        table_header=(
            "mailboxes",
            "creates per mailbox",
            "limit",
            "minimum (s)",
            "measured (s)",
            "posting the webhooks (s)",
            "creates/s (all)",
            "fraction of ceiling",
            "Graph requests per create",
            "429 share",
        ),
    )
    for case in plan.drain_cases:
        result = await _drain(azurite, plan, case)
        creates = case.creates * case.mailboxes
        section.table_rows.append(
            (
                str(case.mailboxes),
                str(case.creates),
                f"{case.limit} / {case.window:g} s",
                number(minimum_seconds(case)),
                number(result.seconds),
                number(result.post_seconds),
                number(creates / result.seconds),
                f"{result.fraction:.0%}",
                number(result.requests / creates),
                f"{result.throttled_share:.1%}",
            )
        )
        section.figures += [
            Figure(
                f"drain rate, {case.mailboxes} mailbox(es), fraction of throttle ceiling",
                round(result.fraction * 100, 1),
                "%",
                f"≥ {TARGET_FRACTION:.0%}",
                result.fraction >= TARGET_FRACTION,
            ),
            Figure(
                f"429s, {case.mailboxes} mailbox(es), share of requests",
                round(result.throttled_share * 100, 1),
                "%",
                f"≤ {TARGET_THROTTLED:.0%}",
                result.throttled_share <= TARGET_THROTTLED,
            ),
            Figure(
                f"Graph requests per create, {case.mailboxes} mailbox(es)",
                round(result.requests / creates, 2),
                "",
                f"≤ {TARGET_REQUESTS_PER_CREATE:g}",
                result.requests / creates <= TARGET_REQUESTS_PER_CREATE,
            ),
        ]
    section.notes.append(
        "Backlogs are scaled down with the mailbox count to bound the run, and the limit with "
        "them so that each backlog still exceeds one window. With many mailboxes the local "
        "stack's own throughput (one host process, Azurite, 2 cores) rather than Graph's limit "
        "can bound the drain: compare creates/s across the rows."
    )
    return section
