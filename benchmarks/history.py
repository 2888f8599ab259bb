"""History: does a change cost more for a staff member with years of past appointments?

Two staff members on one local Functions host: one with no history, one with `history` past
appointments (recorded as their webhooks would have been, each with its event written long ago:
a settled row in their partition and a record in the items table). Then the same number of
changes for each, one at a time and alternating between them, each a new booking whose event
must appear in Graph before the next is sent. Measured per change: the host process's CPU time
and its storage requests (a counting pass-through in front of Azurite), the two compared.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from benchmarks.burst import events_by_key, host_cpu_seconds
from benchmarks.plan import Plan
from benchmarks.report import Figure, Section, number
from benchmarks.stacks import running_stack, storage_account
from benchmarks.staff import (
    BRANCH,
    SERVICE,
    StaffMember,
    book,
    enrol,
    item_key,
    new_coconut,
    sender,
)
from benchmarks.storage_meter import StorageMeter
from local.azurite import Azurite
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.payloads import Envelope
from local.stack import LocalStack
from sync.coconut.webhook_models import parse_delivery
from sync.concurrency import all_settled
from sync.content_cipher import ContentCipher, DataKey
from sync.desired_items import DesiredItemStore
from sync.export.planning import EventLink
from sync.storage.item_links import TableItemLinks
from sync.storage.item_table import TableItemStore

# A staff member with history may pay at most this much more per change.
TARGET_RATIO = 1.10
# Past appointments recorded at once while seeding.
SEED_CONCURRENCY = 16


async def _seed_history(
    stack: LocalStack, azurite: Azurite, person: StaffMember, count: int
) -> None:
    """`count` appointments that ended 1 to 3 years ago, recorded and written long ago."""
    account = storage_account(azurite.connection_string)
    links = TableItemLinks(account)
    items = DesiredItemStore(
        TableItemStore(account, ContentCipher(DataKey.from_setting(stack.data_key))), links
    )
    coconut = new_coconut()
    slots = asyncio.Semaphore(SEED_CONCURRENCY)
    long_ago = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=365)

    async def past(serial: int) -> None:
        start = long_ago - timedelta(hours=4 * serial)
        envelope = coconut.book(
            staff=[person.ref],
            start=start,
            end=start + timedelta(minutes=30),
            service=SERVICE,
            location=BRANCH,
        )
        async with slots:
            await items.record(parse_delivery(_body(envelope)))
            key = item_key(envelope)
            row = await links.row(person.staff_id, key)
            assert row is not None
            written = EventLink(item_key=key, event_id=f"past-{key}", content_hash="written")
            await links.save_link(row, written, done=True)

    try:
        await all_settled(past(serial) for serial in range(count))
    finally:
        await account.close()


def _body(envelope: Envelope) -> bytes:
    return json.dumps(envelope).encode()


class ChangeCost:
    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.storage: list[Counter[str]] = []

    def cpu_ms(self) -> float:
        return sum(self.cpu) * 1000 / len(self.cpu)

    def storage_requests(self) -> float:
        return sum(sum(c.values()) for c in self.storage) / len(self.storage)

    def storage_reads(self) -> float:
        return sum(c["table GET"] for c in self.storage) / len(self.storage)


async def _change(
    stack: LocalStack, meter: StorageMeter, coconut: Coconut, person: StaffMember, serial: int
) -> tuple[float, Counter[str]]:
    envelope = book(coconut, person, serial)
    key = item_key(envelope)
    cpu_before, storage_before = host_cpu_seconds(stack), meter.snapshot()
    async with sender(stack) as coconut_sender:
        await coconut_sender.deliver(envelope)
    started = time.monotonic()
    while key not in events_by_key(stack.graph, [person.mailbox]):
        if time.monotonic() - started > 60:
            raise TimeoutError(f"{key} did not reach {person.staff_id}'s calendar in 60 s")
        await asyncio.sleep(0.02)
    # Let the pass finish (its outcome and lease are written after the event).
    await asyncio.sleep(0.5)
    return host_cpu_seconds(stack) - cpu_before, meter.snapshot() - storage_before


async def measure(azurite: Azurite, plan: Plan) -> Section:
    section = Section("history", "History: the cost of a change with years of past items")
    section.method = __doc__ or ""
    costs = {"none": ChangeCost(), "history": ChangeCost()}
    with StorageMeter(azurite) as meter:
        async with running_stack(
            azurite, storage_connection=meter.connection_string, name="history"
        ) as stack:
            fresh, veteran = enrol(stack, 2)
            coconut = new_coconut()
            # A first booking each resolves their mailboxes and makes the first import round.
            for person in (fresh, veteran):
                await _change(stack, meter, coconut, person, 0)
            seeding = time.monotonic()
            await _seed_history(stack, azurite, veteran, plan.history_items)
            seeded = time.monotonic() - seeding
            for serial in range(1, plan.history_changes + 1):
                for name, person in (("none", fresh), ("history", veteran)):
                    cpu, storage = await _change(stack, meter, coconut, person, serial)
                    costs[name].cpu.append(cpu)
                    costs[name].storage.append(storage)
            duplicated = sum(
                1
                for person in (fresh, veteran)
                for count in events_by_key(stack.graph, [person.mailbox]).values()
                if count > 1
            )
    none, history = costs["none"], costs["history"]
    cpu_ratio = history.cpu_ms() / none.cpu_ms()
    storage_ratio = history.storage_requests() / none.storage_requests()
    section.figures += [
        Figure(
            f"host CPU per change, {plan.history_items} past items vs none",
            cpu_ratio,
            "x",
            f"≤ {TARGET_RATIO:g}x",
            cpu_ratio <= TARGET_RATIO,
        ),
        Figure(
            f"storage requests per change, {plan.history_items} past items vs none",
            storage_ratio,
            "x",
            f"≤ {TARGET_RATIO:g}x",
            storage_ratio <= TARGET_RATIO,
        ),
        # A change that never arrived fails the run (`_change`): none can be lost here.
        Figure("duplicated events", duplicated, "", "0", duplicated == 0),
    ]
    section.table_header = (
        "past items",
        "host CPU per change (ms)",
        "storage requests per change",
        "of which table reads",
    )
    for name, count in (("none", 0), ("history", plan.history_items)):
        cost = costs[name]
        section.table_rows.append(
            (
                str(count),
                number(cost.cpu_ms()),
                number(cost.storage_requests()),
                number(cost.storage_reads()),
            )
        )
    section.notes += [
        f"{plan.history_changes} changes per staff member, alternating; the history was seeded "
        f"in {seeded:.0f} s before the changes.",
        "Storage requests include the host's queue polling while the change was under way.",
        "CPU time comes from /proc in 10 ms clock ticks and one change costs two or three of "
        "them: each figure is the mean over all the changes, not a per-change reading.",
    ]
    return section
