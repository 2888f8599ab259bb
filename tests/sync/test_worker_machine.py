"""The real worker against random histories: a hypothesis state machine over `MemoryWorld`.

Coconut changes appointments and absences (book, change, reassign, cancel, delete); its webhooks
arrive late, twice, out of order or at the same moment; workers run one at a time or two at
once; Graph throttles, loses answers and the process crashes right after a Graph write; people
edit, delete and add events in Outlook. Every step drives the service's own code:
`DesiredItemStore.record` then `SyncRequester.request_sync` for a delivery (as the webhook
endpoint does), `StaffWorker.run` for a queue message.

After quiescence (every delivery made, faults over, a timer round drained), each staff calendar
holds exactly one correct event per item assigned to them, none for anyone else, and Coconut's
busy time for each staff member equals their own busy events in Outlook.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from local.coconut_emulator.webhooks import payloads
from sync.coconut.webhook_models import Delivery, parse_delivery
from sync.cycle import PeriodicCycle
from sync.desired_state import DesiredItem, decide, is_wanted_by
from sync.export.rendering import render_event
from sync.imports.busy_time import external_id_for
from sync.memory.faults import Crash
from sync.memory.world import MemoryWorld
from sync.ports import MailboxUser
from sync.work import QueuedWork

STAFF: dict[str, tuple[str, str]] = {
    "U-1": ("ana@bank.example", "W. Europe Standard Time"),
    "U-2": ("ben@bank.example", "Eastern Standard Time"),
    "U-3": ("chen@bank.example", "UTC"),
}
STAFF_IDS = sorted(STAFF)
TOMORROW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
# Queue messages a quiescent system drains in at most this many runs.
MAX_DRAIN = 400

Kind = Literal["appointment", "unavailability"]


@dataclass
class CoconutItem:
    """Coconut's own record of one item: the truth the calendars must end up showing."""

    kind: Kind
    coconut_id: str
    revision: int = 0
    staff: tuple[str, ...] = ()
    hour: int = 9
    notes: str = ""
    status: Literal["booked", "cancelled"] = "booked"
    deleted: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.coconut_id}"

    def resource(self) -> dict[str, Any]:
        start = TOMORROW + timedelta(hours=self.hour)
        refs = [payloads.staff_member(s, STAFF[s][0], "Staff", s) for s in self.staff]
        if self.kind == "unavailability":
            return dict(
                payloads.unavailability(
                    self.coconut_id,
                    revision=self.revision,
                    title=self.notes or "Away",
                    start=start,
                    end=start + timedelta(hours=2),
                    staff=refs[0],
                )
            )
        return dict(
            payloads.appointment(
                self.coconut_id,
                revision=self.revision,
                start=start,
                end=start + timedelta(hours=1),
                service=payloads.service("S-1", "Opening an account"),
                staff=refs,
                attendees=[payloads.attendee("C-1", "Cleo", "Client", cell_phone="+15550100")],
                notes=self.notes or None,
                status=self.status,
            )
        )

    def delivery(self) -> Delivery:
        plural: Literal["appointments", "unavailabilities"] = (
            "appointments" if self.kind == "appointment" else "unavailabilities"
        )
        if self.deleted:
            data: Any = payloads.deletion(plural, self.coconut_id, self.revision)
            event = f"{self.kind}.deleted"
        else:
            data = self.resource()
            event = f"{self.kind}.{'cancelled' if self.status == 'cancelled' else 'updated'}"
        envelope = payloads.envelope(event, data)  # type: ignore[arg-type]
        return parse_delivery(json.dumps(envelope).encode())


@dataclass
class Outbox:
    """Deliveries Coconut has yet to get accepted (it retries each until it is)."""

    waiting: list[Delivery] = field(default_factory=list)


class WorkerMachine(RuleBasedStateMachine):
    items = Bundle("items")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.world = MemoryWorld()
        self.worker = self.world.worker()
        self.users: dict[str, MailboxUser] = {}
        for staff_id, (mail, zone) in STAFF.items():
            self.users[staff_id] = self.world.calendar.add_user(mail, zone)
            self.world.coconut.add_user(staff_id, mail)
        self.coconut: dict[str, CoconutItem] = {}
        self.outbox = Outbox()
        self.own_events: dict[str, set[str]] = {s: set() for s in STAFF_IDS}
        self.counter = 0

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    # ----- Coconut ---------------------------------------------------------------------------

    def _changed(self, item: CoconutItem, *, webhook: bool = True) -> None:
        """Coconut's record changes; its webhook goes out (or is lost for good)."""
        item.revision += 1
        delivery = item.delivery()
        self.world.coconut.apply(delivery)
        if webhook:
            self.outbox.waiting.append(delivery)

    @initialize(target=items)
    def first_booking(self) -> CoconutItem:
        return self._book(["U-1"], 9)

    @rule(
        target=items,
        staff=st.lists(st.sampled_from(STAFF_IDS), min_size=1, max_size=2, unique=True),
        hour=st.integers(0, 20),
    )
    def book_appointment(self, staff: list[str], hour: int) -> CoconutItem:
        return self._book(staff, hour)

    def _book(self, staff: list[str], hour: int) -> CoconutItem:
        self.counter += 1
        item = CoconutItem("appointment", f"A-{self.counter}", staff=tuple(staff), hour=hour)
        self.coconut[item.key] = item
        self._changed(item)
        return item

    @rule(target=items, staff=st.sampled_from(STAFF_IDS), hour=st.integers(0, 20))
    def book_absence(self, staff: str, hour: int) -> CoconutItem:
        self.counter += 1
        item = CoconutItem("unavailability", f"N-{self.counter}", staff=(staff,), hour=hour)
        self.coconut[item.key] = item
        self._changed(item)
        return item

    @rule(
        item=items,
        hour=st.integers(0, 20),
        notes=st.sampled_from(["", "bring ID", "late"]),
        webhook=st.booleans(),
    )
    def change(self, item: CoconutItem, hour: int, notes: str, webhook: bool) -> None:
        """A change, whose webhook may be lost for good (Coconut gave up after 24 hours)."""
        if item.deleted:
            return
        item.hour, item.notes = hour, notes
        self._changed(item, webhook=webhook)

    @rule(
        item=items,
        staff=st.lists(st.sampled_from(STAFF_IDS), min_size=1, max_size=2, unique=True),
    )
    def reassign(self, item: CoconutItem, staff: list[str]) -> None:
        if item.deleted:
            return
        item.staff = tuple(staff[:1]) if item.kind == "unavailability" else tuple(staff)
        self._changed(item)

    @rule(item=items)
    def reassign_with_the_webhook_lost(self, item: CoconutItem) -> None:
        if item.deleted:
            return
        others = [s for s in STAFF_IDS if s not in item.staff]
        item.staff = (others[0],)
        self._changed(item, webhook=False)

    @rule()
    def scheduled_repair(self) -> None:
        """`COCONUT_RECONCILE_SCHEDULE`: every synced staff member's listings are read."""
        self.run(self._cycle().request_repair(0))

    @rule(staff=st.sampled_from(STAFF_IDS), enabled=st.booleans())
    def calendar_sync(self, staff: str, enabled: bool) -> None:
        """Coconut turns the staff member's calendar sync off or back on (the roster says so
        at the next timer cycle)."""
        self.world.coconut.add_user(staff, STAFF[staff][0], calendar_sync=enabled)

    @rule(item=items)
    def cancel(self, item: CoconutItem) -> None:
        if item.deleted or item.kind != "appointment":
            return
        item.status = "cancelled"
        self._changed(item)

    @rule(item=consumes(items), webhook=st.booleans())
    def delete(self, item: CoconutItem, webhook: bool) -> None:
        if item.deleted:
            return
        item.deleted = True
        self._changed(item, webhook=webhook)

    # ----- deliveries ------------------------------------------------------------------------

    async def _deliver(self, delivery: Delivery) -> None:
        """What the webhook endpoint does once a delivery passed its checks."""
        result = await self.world.items.record(delivery)
        if result.staff_ids:
            await self.world.queue.request_sync(result.staff_ids, "webhook")

    @precondition(lambda self: self.outbox.waiting)
    @rule(pick=st.integers(0, 1000), duplicate=st.booleans())
    def deliver(self, pick: int, duplicate: bool) -> None:
        """One delivery, any of those waiting (out of order), possibly again later."""
        index = pick % len(self.outbox.waiting)
        delivery = self.outbox.waiting[index]
        self.run(self._deliver(delivery))
        if not duplicate:
            del self.outbox.waiting[index]

    @precondition(lambda self: len(self.outbox.waiting) >= 2)
    @rule(pick=st.integers(0, 1000))
    def deliver_two_at_once(self, pick: int) -> None:
        first = pick % len(self.outbox.waiting)
        second = (first + 1) % len(self.outbox.waiting)
        pair = [self.outbox.waiting[first], self.outbox.waiting[second]]

        async def both() -> None:
            await asyncio.gather(*(self._deliver(d) for d in pair))

        self.run(both())
        for delivery in pair:
            self.outbox.waiting.remove(delivery)

    # ----- workers ---------------------------------------------------------------------------

    def _take(self, index: int = 0) -> QueuedWork:
        queued = self.world.queue.messages[index]
        # Time passes until the message is visible (a throttling wait, a lease's end).
        self.world.advance(queued.delay_seconds)
        return self.world.queue.take(index)

    @precondition(lambda self: self.world.queue.messages)
    @rule(pick=st.integers(0, 1000))
    def run_worker(self, pick: int) -> None:
        work = self._take(pick % len(self.world.queue.messages))
        self.run(self.worker.handle(work))

    @precondition(lambda self: len(self.world.queue.messages) >= 2)
    @rule()
    def run_two_workers_at_once(self) -> None:
        first, second = self._take(), self._take()
        other = self.world.worker()

        async def both() -> None:
            await asyncio.gather(self.worker.handle(first), other.handle(second))

        self.run(both())

    @precondition(lambda self: self.world.queue.messages)
    @rule()
    def crash_after_a_graph_write(self) -> None:
        """The process dies right after Graph wrote, before anything recorded the answer; the
        message it held comes back, and its staff lease runs out."""
        work = self._take()
        self.world.faults.crash_after_writes = 1
        try:
            self.run(self.worker.handle(work))
        except Crash:
            self._bury_the_dead_process()
            self.world.queue.put_back(work)
            self.world.advance(self.world.lease.duration.total_seconds() + 1)
        self.world.faults.restart()

    @precondition(lambda self: self.world.queue.messages)
    @rule()
    def crash_after_a_coconut_write(self) -> None:
        """The process dies right after Coconut took a busy block, before the delta link that
        block came from was stored; the message comes back, the staff lease runs out."""
        work = self._take()
        self.world.faults.crash_after_coconut_writes = 1
        try:
            self.run(self.worker.handle(work))
        except Crash:
            self._bury_the_dead_process()
            self.world.queue.put_back(work)
            self.world.advance(self.world.lease.duration.total_seconds() + 1)
        self.world.faults.restart()

    def _bury_the_dead_process(self) -> None:
        """Whatever the dead process still had running ends (every adapter refuses it)."""
        leftovers = asyncio.all_tasks(self.loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            self.run(asyncio.gather(*leftovers, return_exceptions=True))
        self.world.faults.restart()

    @rule(count=st.integers(1, 3))
    def lose_answers(self, count: int) -> None:
        self.world.calendar.lose_next_answers(count)

    @rule(count=st.integers(1, 12), retry_after=st.sampled_from([0.5, 3.0, 30.0]))
    def throttle(self, count: int, retry_after: float) -> None:
        self.world.calendar.throttle_next(count, retry_after)

    @rule()
    def timer(self) -> None:
        """The periodic cycle: the roster, then a sync request for every enabled staff member."""
        self.run(self._cycle().run())

    def _cycle(self) -> PeriodicCycle:
        return PeriodicCycle(self.world.staff, self.world.coconut, self.world.queue)

    # ----- people in Outlook -----------------------------------------------------------------

    def _service_events(self, staff_id: str) -> list[str]:
        user = self.users[staff_id]
        return [e.id for e in self.world.calendar.live_events(user.id) if e.coconut_key]

    @rule(staff=st.sampled_from(STAFF_IDS), pick=st.integers(0, 1000))
    def outlook_edit(self, staff: str, pick: int) -> None:
        """A person edits an event the service wrote; Graph notifies the service."""
        events = self._service_events(staff)
        if not events:
            return
        user = self.users[staff]
        self.world.calendar.person_edit(user.id, events[pick % len(events)], {"subject": "Mine"})
        self.run(self.world.queue.request_sync([staff], "notification"))

    @rule(staff=st.sampled_from(STAFF_IDS), reachable=st.booleans())
    def mailbox_reachability(self, staff: str, reachable: bool) -> None:
        """Graph stops (or starts again) serving the staff member's mailbox: on-premises,
        unlicensed, inactive. Co-assigned staff must not notice."""
        self.world.calendar.set_reachable(self.users[staff].id, reachable)

    @rule(item=items, failing=st.booleans())
    def item_fails_persistently(self, item: CoconutItem, failing: bool) -> None:
        """Every request about one item's event answers 500 (or does not any more)."""
        self.world.calendar.fail_item(item.key, failing)

    @rule(staff=st.sampled_from(STAFF_IDS))
    def graph_forgets_the_delta_token(self, staff: str) -> None:
        """The next incremental round answers 410: a full round over the whole window."""
        self.world.calendar.forget_delta_links(self.users[staff].id)

    @rule(staff=st.sampled_from(STAFF_IDS), pick=st.integers(0, 1000), move=st.booleans())
    def outlook_delete(self, staff: str, pick: int, move: bool) -> None:
        """A person deletes a service event (into Deleted Items) or moves it to another
        calendar: either way it has left the primary calendar, and Coconut wins."""
        events = self._service_events(staff)
        if not events:
            return
        user_id, event_id = self.users[staff].id, events[pick % len(events)]
        if move:
            self.world.calendar.person_move(user_id, event_id)
        else:
            self.world.calendar.person_delete(user_id, event_id)
        self.run(self.world.queue.request_sync([staff], "notification"))

    @rule(
        staff=st.sampled_from(STAFF_IDS),
        hour=st.integers(0, 20),
        show_as=st.sampled_from(["busy", "free", "oof"]),
    )
    def outlook_own_event(self, staff: str, hour: int, show_as: str) -> None:
        start = TOMORROW + timedelta(hours=hour, minutes=30)
        body = {
            "subject": "Dentist",
            "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(minutes=45)).replace(tzinfo=None).isoformat(),
                "timeZone": "UTC",
            },
            "showAs": show_as,
        }
        event_id = self.world.calendar.person_create(self.users[staff].id, body)
        self.own_events[staff].add(event_id)
        self.run(self.world.queue.request_sync([staff], "notification"))

    @rule(staff=st.sampled_from(STAFF_IDS), pick=st.integers(0, 1000))
    def outlook_delete_own_event(self, staff: str, pick: int) -> None:
        live = sorted(self.own_events[staff])
        if not live:
            return
        event_id = live[pick % len(live)]
        self.world.calendar.person_delete(self.users[staff].id, event_id)
        self.own_events[staff].discard(event_id)
        self.run(self.world.queue.request_sync([staff], "notification"))

    # ----- always ---------------------------------------------------------------------------

    @invariant()
    def no_item_has_two_events_in_one_calendar(self) -> None:
        for staff_id in STAFF_IDS:
            keys = [
                e.coconut_key
                for e in self.world.calendar.live_events(self.users[staff_id].id)
                if e.coconut_key
            ]
            assert len(keys) == len(set(keys)), f"duplicate events in {staff_id}'s calendar"

    # ----- after quiescence ------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self.run(self._quiesce())
            self._check_calendars()
            self._check_busy_time()
        finally:
            self.loop.close()

    async def _quiesce(self) -> None:
        self.world.faults.restart()
        self.world.calendar.unreachable.clear()
        self.world.calendar.failing_items.clear()
        for delivery in self.outbox.waiting:  # Coconut retries until each is accepted
            await self._deliver(delivery)
        self.outbox.waiting.clear()
        for staff_id, (mail, _) in STAFF.items():
            self.world.coconut.add_user(staff_id, mail, calendar_sync=True)
        await self._cycle().run()  # the roster: calendar sync back on where it was off
        await self._drain()
        await self._cycle().request_repair(0)  # repairs what lost webhooks left behind
        await self._drain()

    async def _drain(self) -> None:
        for _ in range(MAX_DRAIN):
            if not self.world.queue.messages:
                return
            await self.worker.handle(self._take())
        raise AssertionError(f"the queue did not drain in {MAX_DRAIN} runs")

    def _check_calendars(self) -> None:
        for staff_id in STAFF_IDS:
            user = self.users[staff_id]
            held: dict[str, list[dict[str, Any]]] = {}
            for event in self.world.calendar.live_events(user.id):
                if event.coconut_key:
                    held.setdefault(event.coconut_key, []).append(event.body)
            wanted = {
                key: render_event(truth, user.time_zone).to_graph()
                for key in self.coconut
                if (truth := self._truth(key)) is not None and is_wanted_by(truth, staff_id)
            }
            assert sorted(held) == sorted(wanted), f"{staff_id}: events for the wrong items"
            for key, bodies in held.items():
                assert len(bodies) == 1, f"{staff_id}: {len(bodies)} events for {key}"
                body = bodies[0]
                assert {k: body.get(k) for k in wanted[key]} == wanted[key], (
                    f"{staff_id}: {key} is stale"
                )

    def _truth(self, key: str) -> DesiredItem | None:
        """What Coconut says the item is now (None once deleted), as the service would record
        it; the service must have caught up with every change, webhook or not."""
        item = self.coconut[key]
        recorded = self.world.table.items.get(key)
        assert recorded is not None, f"{key}: never recorded"
        if item.deleted:
            return None
        assert recorded[0].revision == item.revision, f"{key}: recorded revision is stale"
        return decide(None, item.delivery()).record

    def _check_busy_time(self) -> None:
        for staff_id in STAFF_IDS:
            user = self.users[staff_id]
            own_busy = {
                external_id_for(e.id)
                for e in self.world.calendar.live_events(user.id)
                if not e.coconut_key and e.body.get("showAs") in ("busy", "tentative", "oof")
            }
            held = set(self.world.coconut.blocks.get(staff_id, {}))
            assert held == own_busy, f"{staff_id}: Coconut's busy time differs from Outlook"


WorkerMachine.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestWorkerMachine = WorkerMachine.TestCase
