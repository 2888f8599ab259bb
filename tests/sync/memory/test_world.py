"""The whole service in memory (`MemoryWorld`): random Coconut histories, delivered duplicated
and out of order while Graph loses answers, leave every calendar with exactly the events
Coconut's final state asks for, rendered in each mailbox's own time zone; and a service that has
converged stays quiet: the next round of syncs writes nothing anywhere, and costs each mailbox
one delta request at most.

(The random interleavings of workers, crashes, throttling and Outlook edits are the state
machine's, `tests/sync/test_worker_machine.py`; this test holds what it does not look at:
expectations built from Coconut's own last change, and the cost of a converged round.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.coconut.webhook_models import AppointmentChange, Delivery
from sync.cycle import PeriodicCycle
from sync.desired_state import decide
from sync.export.rendering import render_event
from sync.memory.world import MemoryWorld
from sync.ports import MailboxUser
from sync.work import unpacked
from sync.worker import StaffWorker
from tests.sync.payloads import appointment_at, appointment_deleted_at, tomorrow

ZONES = {
    "U-1": "Pacific Standard Time",
    "U-2": "W. Europe Standard Time",
    "U-3": "America/Toronto",
}
APPOINTMENTS = ("A-1", "A-2")
SOON = tomorrow()  # inside the import window and the retention on any day
NOTES = ("", "Bring ID", "Prefers French", None)
# Runs a quiet service needs to drain its queue, at most.
MAX_DRAIN = 200

staff_sets = st.frozensets(st.sampled_from(sorted(ZONES)), min_size=1)
operations = st.tuples(
    st.sampled_from(APPOINTMENTS),
    st.one_of(
        st.tuples(st.just("update"), st.sampled_from(NOTES)),
        st.tuples(st.just("reassign"), staff_sets),
        st.tuples(st.just("cancel")),
        st.tuples(st.just("rebook")),
        st.tuples(st.just("delete")),
    ),
)


@dataclass
class CoconutAppointment:
    """Coconut's own view of one appointment, revision by revision."""

    staff: frozenset[str]
    revision: int = 0
    status: str = "booked"
    notes: str | None = "Bring ID"
    deleted: bool = False
    last: AppointmentChange | None = None


def coconut_history(
    ops: list[tuple[str, tuple[Any, ...]]],
) -> tuple[list[Delivery], dict[str, CoconutAppointment]]:
    """The deliveries Coconut sends for `ops`, in order, and its final state per appointment."""
    state = {
        coconut_id: CoconutAppointment(staff=frozenset({staff_id}))
        for coconut_id, staff_id in zip(APPOINTMENTS, sorted(ZONES), strict=False)
    }
    sent: list[Delivery] = []
    for coconut_id, (action, *args) in ops:
        appointment = state[coconut_id]
        if appointment.deleted:
            continue  # Coconut cannot change a deleted appointment
        appointment.revision += 1
        if action == "delete":
            appointment.deleted = True
            sent.append(appointment_deleted_at(appointment.revision, coconut_id))
            continue
        if action == "update":
            appointment.notes = args[0]
        elif action == "reassign":
            appointment.staff = args[0]
        else:
            appointment.status = "cancelled" if action == "cancel" else "booked"
        change = appointment_at(
            appointment.revision,
            tuple(sorted(appointment.staff)),
            coconut_id=coconut_id,
            status=appointment.status,
            notes=appointment.notes,
            starts=SOON,
        )
        appointment.last = change
        sent.append(change)
    return sent, state


class Service:
    """A `MemoryWorld` with one mailbox per staff member, driven as the host drives it."""

    def __init__(self) -> None:
        self.world = MemoryWorld()
        self.worker: StaffWorker = self.world.worker()
        self.users: dict[str, MailboxUser] = {
            staff_id: self.world.calendar.add_user(f"{staff_id.lower()}@bank.example", zone)
            for staff_id, zone in ZONES.items()
        }
        for staff_id in ZONES:
            self.world.coconut.add_user(staff_id, f"{staff_id.lower()}@bank.example")

    async def receive(self, delivery: Delivery) -> None:
        """Coconut changes its record and sends the webhook; the endpoint records it."""
        self.world.coconut.apply(delivery)
        result = await self.world.items.record(delivery)
        if result.staff_ids:
            await self.world.queue.request_sync(result.staff_ids, "webhook")

    async def run_next(self, index: int = 0) -> int:
        """The message's work done; how many staff members' runs it was (a batch holds
        several)."""
        queued = self.world.queue.messages[index]
        self.world.advance(queued.delay_seconds)  # the message's delay passes
        work = self.world.queue.take(index)
        await self.worker.handle(work)
        return len(unpacked(work))

    async def drain(self) -> int:
        """Every message's work done; how many staff members' runs that took."""
        runs = 0
        for _ in range(MAX_DRAIN):
            if not self.world.queue.messages:
                return runs
            runs += await self.run_next()
        raise AssertionError(f"the queue did not drain in {MAX_DRAIN} messages")

    async def timer_round(self) -> int:
        """The periodic cycle (roster, then a sync of every enabled staff member), drained."""
        await PeriodicCycle(self.world.staff, self.world.coconut, self.world.queue).run()
        return await self.drain()

    def calendar(self, staff_id: str) -> dict[str | None, list[dict[str, Any]]]:
        found: dict[str | None, list[dict[str, Any]]] = {}
        for event in self.world.calendar.live_events(self.users[staff_id].id):
            found.setdefault(event.coconut_key, []).append(event.body)
        return found

    def busy_time(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {staff_id: dict(blocks) for staff_id, blocks in self.world.coconut.blocks.items()}

    def graph_state(self) -> list[tuple[str, str, str, str]]:
        """Every event ever made, with its change key and where it is (deleted or not)."""
        return sorted(
            (mailbox.user.id, event.id, event.change_key, event.folder)
            for mailbox in self.world.calendar.mailboxes.values()
            for event in mailbox.events.values()
        )


def expected_calendar(
    final: dict[str, CoconutAppointment], staff_id: str
) -> dict[str | None, list[dict[str, Any]]]:
    """Built from Coconut's own last change, not from anything the service recorded."""
    wanted: dict[str | None, list[dict[str, Any]]] = {}
    for coconut_id, appointment in final.items():
        if (
            appointment.last is not None
            and not appointment.deleted
            and appointment.status == "booked"
            and staff_id in appointment.staff
        ):
            record = decide(None, appointment.last).record
            assert record is not None
            body = render_event(record, ZONES[staff_id]).to_graph()
            wanted[f"appointment:{coconut_id}"] = [body]
    return wanted


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(operations, max_size=12), data=st.data())
def test_calendars_converge_to_coconuts_final_state_and_then_stay_quiet(
    ops: list[tuple[str, tuple[Any, ...]]], data: st.DataObject
) -> None:
    sent, final = coconut_history(ops)
    redelivered = data.draw(st.lists(st.sampled_from(sent), max_size=5)) if sent else []
    # Shuffled, or in Coconut's order with redeliveries interleaved: histories where every step
    # lands (create, sync, cancel, sync, rebook) matter as much as scrambled ones.
    if data.draw(st.booleans()):
        arrivals = data.draw(st.permutations(sent + redelivered))
    else:
        arrivals = list(sent)
        for again in redelivered:
            arrivals.insert(data.draw(st.integers(0, len(arrivals))), again)
    lost = data.draw(st.lists(st.integers(0, 3), max_size=len(arrivals)))

    async def scenario() -> None:
        service = Service()
        # Coconut's own record went through every change; the webhooks are still on their way.
        for change in sent:
            service.world.coconut.apply(change)
        for number, delivery in enumerate(arrivals):
            await service.receive(delivery)
            if number < len(lost) and lost[number]:
                service.world.calendar.lose_next_answers(lost[number])
            # The worker runs at arbitrary points, taking any waiting message.
            while service.world.queue.messages and data.draw(st.integers(0, 3)) > 0:
                pick = data.draw(st.integers(0, len(service.world.queue.messages) - 1))
                await service.run_next(pick)
        service.world.faults.scheduled.clear()
        await service.drain()
        # The timer's round too: a staff member whose only pass was throttled before it learned
        # their e-mail waits for the roster (see `test_worker.py`, the strict xfail).
        await service.timer_round()

        for staff_id in ZONES:
            assert service.calendar(staff_id) == expected_calendar(final, staff_id), staff_id

        # Converged: another round writes nothing to Graph (it may still drop rows of deleted
        # items), and the one after that changes nothing anywhere and asks each mailbox for
        # its delta at most.
        before, blocks = service.graph_state(), service.busy_time()
        await service.timer_round()
        assert service.graph_state() == before
        links = {s: await service.world.links.rows(s) for s in ZONES}
        requests = service.world.calendar.requests
        assert await service.timer_round() == len(ZONES), "one run each, nothing put back"
        assert service.world.calendar.requests - requests <= len(ZONES)
        assert service.graph_state() == before
        assert service.busy_time() == blocks
        assert {s: await service.world.links.rows(s) for s in ZONES} == links
        for staff_id in ZONES:
            record = await service.world.staff.get(staff_id)
            assert record is not None
            assert record.outcome.status == "Syncing"
            assert record.outcome.event_count == len(expected_calendar(final, staff_id))

    asyncio.run(scenario())
