"""The desired-state rules: which delivery wins, and whose calendars it touches."""

from __future__ import annotations

import pytest

from sync.coconut.webhook_models import (
    Appointment,
    Delivery,
    IgnoredEvent,
    UnavailabilityDeleted,
)
from sync.desired_state import (
    DesiredItem,
    decide,
    delivery_key,
    is_wanted_by,
    item_key,
)
from tests.sync.payloads import (
    appointment_at,
    appointment_deleted_at,
    unavailability_change,
    unavailability_envelope,
)


def recorded(*deliveries: Delivery) -> DesiredItem | None:
    """The record after feeding `deliveries` in order through decide()."""
    record: DesiredItem | None = None
    for delivery in deliveries:
        decision = decide(record, delivery)
        if decision.record is not None:
            record = decision.record
    return record


def test_item_key() -> None:
    assert item_key("appointment", "A-1001") == "appointment:A-1001"
    assert item_key("unavailability", "N-77") == "unavailability:N-77"
    assert delivery_key(appointment_at(1)) == "appointment:A-1001"
    assert delivery_key(IgnoredEvent(delivery_id="d", event_type="x.y")) is None


def test_a_first_change_is_accepted_and_touches_its_staff() -> None:
    decision = decide(None, appointment_at(3, ("U-1", "U-2")))

    assert decision.outcome == "accepted"
    assert decision.reconcile_staff == {"U-1", "U-2"}
    record = decision.record
    assert record is not None
    assert (record.key, record.revision, record.deleted) == ("appointment:A-1001", 3, False)
    assert record.staff_ids == {"U-1", "U-2"}
    assert record.staff_emails == {"U-1": "u-1@bank.example", "U-2": "u-2@bank.example"}


def test_a_higher_revision_replaces_the_record() -> None:
    decision = decide(recorded(appointment_at(3)), appointment_at(4, notes="New notes"))

    assert decision.outcome == "accepted"
    assert decision.record is not None
    assert decision.record.revision == 4
    assert isinstance(decision.record.resource, Appointment)
    assert decision.record.resource.notes == "New notes"


def test_a_reassignment_reconciles_old_and_new_staff() -> None:
    decision = decide(
        recorded(appointment_at(3, ("U-1", "U-2"))), appointment_at(4, ("U-2", "U-3"))
    )

    assert decision.outcome == "accepted"
    assert decision.reconcile_staff == {"U-1", "U-2", "U-3"}
    assert decision.record is not None
    assert decision.record.staff_ids == {"U-2", "U-3"}
    assert decision.record.previous_staff_ids == {"U-1", "U-2"}


def test_the_same_revision_again_is_a_duplicate_that_reconciles_again() -> None:
    record = recorded(appointment_at(3, ("U-1",)), appointment_at(4, ("U-2",)))

    decision = decide(record, appointment_at(4, ("U-2",)))

    assert decision.outcome == "duplicate"
    assert decision.record is None
    # Both the current and the previous assignee: the first delivery's enqueue may have failed.
    assert decision.reconcile_staff == {"U-1", "U-2"}


def test_a_lower_revision_is_stale() -> None:
    decision = decide(recorded(appointment_at(5)), appointment_at(4, ("U-9",)))

    assert decision.outcome == "stale"
    assert decision.record is None
    assert decision.reconcile_staff == frozenset()


def test_a_cancellation_is_kept_and_reconciles_its_staff() -> None:
    decision = decide(
        recorded(appointment_at(3, ("U-1",))), appointment_at(4, ("U-1",), status="cancelled")
    )

    assert decision.outcome == "accepted"
    assert decision.reconcile_staff == {"U-1"}
    assert decision.record is not None
    assert not decision.record.deleted
    assert not is_wanted_by(decision.record, "U-1")


def test_a_deletion_tombstones_the_record_and_reconciles_the_old_staff() -> None:
    decision = decide(recorded(appointment_at(3, ("U-1", "U-2"))), appointment_deleted_at(4))

    assert decision.outcome == "accepted"
    assert decision.reconcile_staff == {"U-1", "U-2"}
    record = decision.record
    assert record is not None
    assert (record.deleted, record.resource, record.revision) == (True, None, 4)
    assert record.staff_ids == frozenset()


def test_a_deletion_of_an_unknown_item_is_recorded_so_nothing_brings_it_back() -> None:
    decision = decide(None, appointment_deleted_at(2))

    assert decision.outcome == "accepted"
    assert decision.reconcile_staff == frozenset()
    assert decide(decision.record, appointment_at(1)).outcome == "stale"


@pytest.mark.parametrize("revision", [3, 4, 99])
def test_anything_after_a_deletion_is_stale(revision: int) -> None:
    record = recorded(appointment_at(2), appointment_deleted_at(3))

    assert decide(record, appointment_at(revision)).outcome == "stale"


def test_a_later_deletion_after_a_deletion_is_stale() -> None:
    record = recorded(appointment_deleted_at(3))

    assert decide(record, appointment_deleted_at(4)).outcome == "stale"


def test_the_same_deletion_again_is_a_duplicate() -> None:
    record = recorded(appointment_at(2, ("U-1",)), appointment_deleted_at(3))

    decision = decide(record, appointment_deleted_at(3))

    assert decision.outcome == "duplicate"
    assert decision.reconcile_staff == {"U-1"}


@pytest.mark.parametrize("revision", [2, 5])
def test_a_deletion_wins_even_with_a_revision_not_above_the_record(revision: int) -> None:
    # Coconut cannot change a deleted appointment: every recorded change came before it.
    decision = decide(recorded(appointment_at(5, ("U-1",))), appointment_deleted_at(revision))

    assert decision.outcome == "accepted"
    assert decision.record is not None
    assert decision.record.deleted
    assert decision.reconcile_staff == {"U-1"}


def test_unavailabilities_follow_the_same_rules() -> None:
    created = unavailability_change(unavailability_envelope())
    first = decide(None, created)
    assert first.record is not None
    assert first.record.key == "unavailability:N-77"
    assert first.reconcile_staff == {"U-42"}
    assert is_wanted_by(first.record, "U-42")

    assert decide(first.record, created).outcome == "duplicate"
    deletion = UnavailabilityDeleted(
        delivery_id="d", event_type="unavailability.deleted", unavailability_id="N-77", revision=2
    )
    deleted = decide(first.record, deletion)
    assert deleted.outcome == "accepted"
    assert deleted.reconcile_staff == {"U-42"}


def test_an_ignored_event_records_nothing() -> None:
    decision = decide(None, IgnoredEvent(delivery_id="d", event_type="staff.created"))

    assert decision.outcome == "ignored"
    assert decision.record is None
    assert decision.reconcile_staff == frozenset()


def test_a_record_of_another_item_is_refused() -> None:
    with pytest.raises(ValueError, match="not the one"):
        decide(recorded(appointment_at(1, coconut_id="A-1")), appointment_at(2, coconut_id="A-2"))


def test_is_wanted_by_only_assigned_booked_live_items() -> None:
    booked = recorded(appointment_at(1, ("U-1",)))
    assert booked is not None
    assert is_wanted_by(booked, "U-1")
    assert not is_wanted_by(booked, "U-2")


def test_a_record_survives_a_round_trip_through_json() -> None:
    for record in (
        recorded(appointment_at(3, ("U-1", "U-2"))),
        recorded(unavailability_change(unavailability_envelope())),
        recorded(appointment_at(3), appointment_deleted_at(4)),
    ):
        assert record is not None
        assert DesiredItem.model_validate_json(record.model_dump_json()) == record


def test_the_repr_of_a_record_leaves_e_mails_out() -> None:
    record = recorded(appointment_at(1, ("U-1",)))

    assert "bank.example" not in repr(record)
    assert "Sam" not in repr(record)
