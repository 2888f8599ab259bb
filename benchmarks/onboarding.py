"""Onboarding: staff members whose appointments are already in Coconut are connected.

`staff x appointments` booked in Coconut's record while the staff members' calendar sync is off
(no webhook is ever sent for them); then their calendar sync is turned on and the timer's cycle
(`sync.cycle.PeriodicCycle`, the code the timer trigger runs) is started in-process against the
same storage: it finds them on the roster and queues their first syncs, which read Coconut's
listings and write the events. Measured: seconds from the cycle's start until every appointment
is an event in Graph, Graph requests per event and Coconut API requests per staff member (from
the emulators' counters), and what was lost or duplicated.

The floor is Graph's per-mailbox ceiling: `appointments` creates at `requestsPerWindow` per
`windowSeconds` (10,000 per 10 minutes, graph/FACTS.md); mailboxes are served in parallel.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from benchmarks.burst import events_by_key
from benchmarks.plan import Plan
from benchmarks.report import Figure, Section, number
from benchmarks.stacks import running_stack, storage_account
from benchmarks.staff import BRANCH, SERVICE, StaffMember, enrol, graph_requests, total_requests
from local.azurite import Azurite
from local.graph_emulator.throttling import ThrottleLimits
from local.stack import COCONUT_API_KEY
from sync.coconut.api import CoconutApi
from sync.cycle import PeriodicCycle
from sync.storage.staff_table import TableStaffStore
from sync.storage.work_queue import StorageWorkQueue

TARGET_GRAPH_PER_EVENT = 1.1


def floor_seconds(appointments: int, limits: ThrottleLimits) -> float:
    """The least time Graph's per-mailbox ceiling allows for one mailbox's creates."""
    return appointments * limits.window_seconds / limits.requests_per_window


async def measure(azurite: Azurite, plan: Plan) -> Section:
    staff, appointments = plan.onboarding_staff, plan.onboarding_appointments
    section = Section("onboarding", "Onboarding: appointments already in Coconut")
    section.method = __doc__ or ""
    limits = ThrottleLimits()
    async with running_stack(azurite, name="onboarding", log_dir=plan.log_dir) as stack:
        people: list[StaffMember] = enrol(stack, staff)
        keys: dict[str, set[str]] = {}
        first = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        for person in people:
            stack.coconut.add_user(
                person.staff_id, person.email, "Staff", person.staff_id[-6:], calendar_sync=False
            )
            for serial in range(appointments):
                start = first + timedelta(minutes=30 * serial)
                booked = stack.coconut.book(
                    staff=[person.staff_id],
                    start=start,
                    end=start + timedelta(minutes=30),
                    service=SERVICE,
                    location=BRANCH,
                )
                keys.setdefault(person.mailbox, set()).add(f"appointment:{booked['data']['id']}")
        for person in people:
            stack.coconut.set_calendar_sync(person.staff_id, True)
        graph_before = total_requests(graph_requests(stack.graph))
        coconut_before = stack.coconut.requests()
        account = storage_account(azurite.connection_string)
        await account.ensure_created()  # the host creates them on its first write
        started = time.monotonic()
        try:
            async with CoconutApi(stack.coconut.base_url, COCONUT_API_KEY) as coconut:
                cycle = PeriodicCycle(TableStaffStore(account), coconut, StorageWorkQueue(account))
                await cycle.run()
        finally:
            await account.close()
        expected = sum(len(k) for k in keys.values())
        deadline = plan.sync_timeout * 3

        def arrived() -> int:
            return sum(
                len(want & events_by_key(stack.graph, [mailbox]).keys())
                for mailbox, want in keys.items()
            )

        while time.monotonic() - started < deadline:
            if arrived() >= expected:
                break
            await asyncio.sleep(0.1)
        seconds = time.monotonic() - started
        await asyncio.sleep(1.0)  # the passes' last writes (none should be Graph's)
        graph = total_requests(graph_requests(stack.graph)) - graph_before
        coconut_requests = stack.coconut.requests() - coconut_before
        held = {m: events_by_key(stack.graph, [m]) for m in keys}
        lost = sum(len(want - held[m].keys()) for m, want in keys.items())
        duplicated = sum(1 for m, want in keys.items() for k in want if held[m].get(k, 0) > 1)
    floor = floor_seconds(appointments, limits)
    target = 2 * floor + 2
    per_event = graph / expected
    section.figures += [
        Figure(
            f"onboarding {staff} staff x {appointments} appointments: seconds until all are in "
            "Outlook",
            seconds,
            "s",
            f"≤ 2 x Graph's floor ({floor:g} s) + 2 s = {target:g} s",
            seconds <= target and lost == 0,
        ),
        Figure(
            "onboarding: Graph requests per event",
            per_event,
            "",
            f"≤ {TARGET_GRAPH_PER_EVENT:g}",
            per_event <= TARGET_GRAPH_PER_EVENT,
        ),
        Figure("onboarding: Coconut API requests per staff member", coconut_requests / staff, ""),
        Figure(
            "onboarding: lost or duplicated", lost + duplicated, "", "0", lost + duplicated == 0
        ),
    ]
    section.table_header = ("staff x appointments", "seconds", "Graph requests", "Coconut requests")
    section.table_rows.append(
        (f"{staff} x {appointments}", number(seconds), str(graph), str(coconut_requests))
    )
    section.notes.append(
        "Graph requests include each staff member's user look-up, first delta round and "
        "subscription check; Coconut requests include the cycle's roster read and the listings."
    )
    return section
