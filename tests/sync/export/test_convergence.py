"""Random Coconut histories, delivered duplicated and out of order, with workers crashing
mid-create, always leave every calendar with exactly the events Coconut's final state asks for.

The whole export core runs here: parse -> decide -> render -> plan -> apply (to a strict fake).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.coconut.webhook_models import AppointmentChange, Delivery
from sync.desired_state import DesiredItem, decide, delivery_key, is_wanted_by
from sync.export.planning import EventLink, plan_calendar_changes
from sync.export.rendering import EventDraft, render_event
from tests.sync.export.fake_calendar import FakeCalendar, LostAnswer, apply_change
from tests.sync.payloads import appointment_at, appointment_deleted_at

ZONES = {
    "U-1": "Pacific Standard Time",
    "U-2": "W. Europe Standard Time",
    "U-3": "America/Toronto",
}
APPOINTMENTS = ("A-1", "A-2")
NOTES = ("", "Bring ID", "Prefers French", None)

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
    ops: list[tuple[str, tuple[object, ...]]],
) -> tuple[list[Delivery], dict[str, CoconutAppointment]]:
    """The deliveries Coconut sends for `ops`, in order, and its final state per appointment."""
    # Each starts with its own staff member, so that one appointment's reconciles rarely mask
    # another's missed ones.
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
            appointment.notes = args[0]  # type: ignore[assignment]
        elif action == "reassign":
            appointment.staff = args[0]  # type: ignore[assignment]
        elif action in ("cancel", "rebook"):
            appointment.status = "cancelled" if action == "cancel" else "booked"
        change = appointment_at(
            appointment.revision,
            tuple(sorted(appointment.staff)),
            coconut_id=coconut_id,
            status=appointment.status,
            notes=appointment.notes,
        )
        appointment.last = change
        sent.append(change)
    return sent, state


@dataclass
class SyncService:
    """The webhook and the queue worker, over in-memory stores."""

    records: dict[str, DesiredItem] = field(default_factory=dict)
    queue: list[str] = field(default_factory=list)
    calendars: dict[str, FakeCalendar] = field(
        default_factory=lambda: {staff: FakeCalendar() for staff in ZONES}
    )
    links: dict[str, dict[str, EventLink]] = field(
        default_factory=lambda: {staff: {} for staff in ZONES}
    )

    def receive(self, delivery: Delivery) -> None:
        key = delivery_key(delivery)
        assert key is not None
        decision = decide(self.records.get(key), delivery)
        if decision.record is not None:
            self.records[key] = decision.record
        self.queue.extend(sorted(decision.reconcile_staff))

    def desired(self, staff_id: str) -> dict[str, EventDraft]:
        return {
            key: render_event(item, ZONES[staff_id])
            for key, item in self.records.items()
            if is_wanted_by(item, staff_id)
        }

    def reconcile(self, staff_id: str, *, crash_on_create: bool = False) -> int:
        finished = {key for key, item in self.records.items() if item.deleted}
        links = self.links[staff_id]
        changes = plan_calendar_changes(staff_id, self.desired(staff_id), links, finished)
        for change in changes:
            try:
                apply_change(
                    change,
                    self.calendars[staff_id],
                    links,
                    lose_answer=crash_on_create and change.kind == "create",
                )
            except LostAnswer:
                self.queue.append(staff_id)  # the message becomes visible again
                break
        return len(changes)


@settings(max_examples=500, deadline=None)
@given(ops=st.lists(operations, max_size=14), data=st.data())
def test_calendars_converge_to_coconuts_final_state(
    ops: list[tuple[str, tuple[object, ...]]], data: st.DataObject
) -> None:
    sent, final = coconut_history(ops)
    redelivered = data.draw(st.lists(st.sampled_from(sent), max_size=6)) if sent else []
    # Shuffled, or in Coconut's order with redeliveries interleaved: histories where every step
    # lands (create, reconcile, cancel, reconcile, rebook) matter as much as scrambled ones.
    if data.draw(st.booleans()):
        arrivals = data.draw(st.permutations(sent + redelivered))
    else:
        arrivals = list(sent)
        for again in redelivered:
            arrivals.insert(data.draw(st.integers(0, len(arrivals))), again)
    service = SyncService()

    for delivery in arrivals:
        service.receive(delivery)
        # The worker runs at arbitrary points, and sometimes dies right after a POST.
        while service.queue and data.draw(st.integers(0, 3)) > 0:
            staff_id = service.queue.pop(data.draw(st.integers(0, len(service.queue) - 1)))
            service.reconcile(staff_id, crash_on_create=data.draw(st.booleans()))
    while service.queue:
        service.reconcile(service.queue.pop(0))

    for staff_id, zone in ZONES.items():
        expected = {
            f"appointment:{coconut_id}": [render_event(_item(appointment.last), zone)]
            for coconut_id, appointment in final.items()
            if appointment.last is not None
            and not appointment.deleted
            and appointment.status == "booked"
            and staff_id in appointment.staff
        }
        calendar = service.calendars[staff_id]
        assert calendar.drafts() == expected
        # Converged: another reconcile writes nothing to Graph (it may still drop links of
        # deleted items), and the one after that has nothing at all to do.
        writes = calendar.writes
        service.reconcile(staff_id)
        assert calendar.writes == writes
        assert service.reconcile(staff_id) == 0


def _item(change: AppointmentChange | None) -> DesiredItem:
    assert change is not None
    record = decide(None, change).record
    assert record is not None
    return record
