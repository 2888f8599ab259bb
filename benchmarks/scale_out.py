"""Scale-out: one backlog drained by 1, 2 and 3 Functions hosts on one storage account, as Flex
Consumption adds instances.

For each host count, a fresh stack: the staff members' mailboxes resolved by a first booking
each, then `staff x bookings` new bookings delivered 20 at a time, spread over the hosts'
webhook endpoints in turn; every host works the one queue (the first also runs the timers). The
run ends when every booking is an event in Graph. Measured: changes per second from the first
delivery to the last event, the hosts' CPU time per change (all hosts together), and what was
lost or duplicated (read back from the Graph emulator). On this machine's 2 CPUs, more than two
hosts share the same cores: the figure that matters is that nothing is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from benchmarks.burst import events_by_key, mailboxes_settled
from benchmarks.plan import Plan
from benchmarks.report import Figure, Section, number
from benchmarks.stacks import running_stack
from benchmarks.staff import StaffMember, book, enrol, item_key, new_coconut, sender
from chaos.hosts import Hosts
from local.azurite import Azurite
from local.coconut_emulator.webhooks.delivery import WebhookSender
from local.coconut_emulator.webhooks.payloads import Envelope
from local.host_process import HostProcess
from local.stack import LocalStack

# Deliveries in flight at once, over all the hosts.
CONCURRENCY = 20


def _hosts(stack: LocalStack, hosts: Hosts) -> list[HostProcess]:
    return [p for p in (stack.host, *hosts.others) if p is not None]


async def _drain(
    stack: LocalStack, hosts: Hosts, people: list[StaffMember], bookings: int, deadline: float
) -> tuple[tuple[str, ...], list[Figure]]:
    coconut = new_coconut()
    envelopes = [book(coconut, p, 100 + serial) for serial in range(bookings) for p in people]
    expected = {item_key(envelope) for envelope in envelopes}
    senders: list[WebhookSender] = []
    for url in hosts.webhook_urls:
        one = sender(stack)
        one.url = url
        senders.append(one)
    turns = itertools.cycle(senders)
    slots = asyncio.Semaphore(CONCURRENCY)
    running = _hosts(stack, hosts)
    cpu_before = sum(host.cpu_seconds() for host in running)
    started = time.monotonic()

    async def deliver(one: WebhookSender, envelope: Envelope) -> None:
        async with slots:
            await one.deliver(envelope)

    async with contextlib.AsyncExitStack() as open_senders:
        for one in senders:
            await open_senders.enter_async_context(one)
        await asyncio.gather(*(deliver(next(turns), e) for e in envelopes))
    mailboxes = [p.mailbox for p in people]
    while time.monotonic() - started < deadline:
        if expected <= events_by_key(stack.graph, mailboxes).keys():
            break
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - started
    cpu = sum(host.cpu_seconds() for host in running) - cpu_before
    held = events_by_key(stack.graph, mailboxes)
    lost = len(expected - held.keys())
    duplicated = sum(1 for key in expected if held.get(key, 0) > 1)
    changes = len(envelopes)
    rate = changes / seconds
    count = len(running)
    row = (
        str(count),
        f"{len(people)} x {bookings}",
        number(rate),
        number(cpu * 1000 / changes),
        f"{lost} / {duplicated}",
    )
    figures = [
        Figure(f"changes per second, {count} host(s)", rate, "/s"),
        Figure(
            f"lost or duplicated, {count} host(s)",
            lost + duplicated,
            "",
            "0",
            lost + duplicated == 0,
        ),
    ]
    return row, figures


async def measure(azurite: Azurite, plan: Plan) -> Section:
    section = Section(
        "scale_out",
        "Scale-out: one backlog, several hosts on one storage account",
        method=__doc__ or "",
        table_header=(
            "hosts",
            "staff x bookings",
            "changes/s",
            "hosts' CPU per change (ms)",
            "lost / duplicated",
        ),
    )
    for count in plan.scale_hosts:
        async with running_stack(azurite, name=f"scale-{count}", log_dir=plan.log_dir) as stack:
            hosts = Hosts(stack, count).start()
            try:
                people = enrol(stack, plan.scale_staff)
                warm = new_coconut()
                async with sender(stack) as coconut_sender:
                    await asyncio.gather(
                        *(coconut_sender.deliver(book(warm, p, 0)) for p in people)
                    )
                await mailboxes_settled(stack, people)
                row, figures = await _drain(
                    stack, hosts, people, plan.scale_bookings, plan.sync_timeout * 3
                )
            finally:
                hosts.stop()
        section.table_rows.append(row)
        section.figures += figures
    return section
