"""The staff record's partial writes: only the fields given to a group's constructor are
written, later changes win field by field, and a record applies them without touching the rest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from sync.staff_record import (
    GROUPS,
    Connection,
    ImportCursor,
    Lease,
    Mailbox,
    Outcome,
    Rerun,
    Roster,
    StaffChanges,
    StaffRecord,
    SubscriptionState,
)

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def test_only_the_fields_given_are_written_defaults_included() -> None:
    changes = StaffChanges(
        outcome=Outcome(status="Error", reason=""),
        lease=Lease(owner=""),
        cursor=ImportCursor(delta_link="", initialised_at=None),
    )

    assert changes.written() == {
        "outcome": {"status": "Error", "reason": ""},
        "lease": {"owner": ""},
        "cursor": {"delta_link": "", "initialised_at": None},
    }, "a field set to its default is written (it clears the stored value)"


def test_no_group_or_groups_without_fields_are_empty() -> None:
    assert StaffChanges().empty
    assert StaffChanges(outcome=Outcome(), roster=Roster()).empty
    assert StaffChanges().written() == {}
    assert StaffChanges(outcome=Outcome()).written() == {"outcome": {}}
    assert not StaffChanges(rerun=Rerun(requested=False)).empty


def test_then_lets_later_fields_win_and_keeps_the_rest() -> None:
    first = StaffChanges(
        roster=Roster(email="kim@bank.example"),
        outcome=Outcome(status="Syncing", event_count=3, last_sync_at=NOON),
    )
    second = StaffChanges(
        outcome=Outcome(status="Error", reason="denied"),
        mailbox=Mailbox(user_id="user-1"),
    )

    combined = first.then(second)

    assert combined.written() == {
        "roster": {"email": "kim@bank.example"},
        "mailbox": {"user_id": "user-1"},
        "outcome": {
            "status": "Error",
            "event_count": 3,
            "last_sync_at": NOON,
            "reason": "denied",
        },
    }
    assert second.then(first).written()["outcome"]["status"] == "Syncing"
    assert first.then(StaffChanges()) == first
    assert StaffChanges().then(first) == first


def test_then_of_a_group_set_only_by_the_earlier_changes_keeps_it_whole() -> None:
    earlier = StaffChanges(subscription=SubscriptionState(id="sub-1", expires_at=NOON))

    assert earlier.then(StaffChanges(lease=Lease(owner=""))).written() == {
        "subscription": {"id": "sub-1", "expires_at": NOON},
        "lease": {"owner": ""},
    }


def test_with_changes_writes_the_set_fields_and_the_etag_and_nothing_else() -> None:
    stored = StaffRecord(staff_id="U-1", etag="e-1").with_changes(
        StaffChanges(
            roster=Roster(email="kim@bank.example", calendar_sync=True),
            outcome=Outcome(status="Syncing", reason="", event_count=4, at=NOON),
            connection=Connection(removed_events=2),
        ),
        "e-2",
    )

    updated = stored.with_changes(
        StaffChanges(outcome=Outcome(status="Error", reason="denied", at=LATER)), "e-3"
    )

    assert updated.etag == "e-3"
    assert updated.outcome == Outcome(status="Error", reason="denied", event_count=4, at=LATER)
    assert updated.roster == stored.roster
    assert updated.connection == stored.connection
    assert stored.outcome.status == "Syncing", "the record read earlier is unchanged"
    assert stored.etag == "e-2"


def test_a_record_is_syncable_unless_switched_off_or_disconnected() -> None:
    def record(changes: StaffChanges) -> StaffRecord:
        return StaffRecord(staff_id="U-1").with_changes(changes, "e")

    assert record(StaffChanges()).syncable, "not on the roster yet: still synced"
    assert record(StaffChanges(roster=Roster(calendar_sync=True))).syncable
    assert not record(StaffChanges(roster=Roster(calendar_sync=False))).syncable
    assert not record(StaffChanges(connection=Connection(disconnected=True))).syncable


def test_groups_refuse_unknown_fields_and_cannot_change() -> None:
    with pytest.raises(ValidationError):
        Outcome(state="Syncing")  # type: ignore[call-arg]
    outcome = Outcome(status="Warning")
    with pytest.raises(ValidationError):
        outcome.status = "Error"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Outcome(status="Sleeping")


def test_every_group_has_its_place_in_changes_and_records() -> None:
    assert set(GROUPS) == set(StaffChanges.model_fields)
    assert set(GROUPS) | {"staff_id", "etag"} == set(StaffRecord.model_fields)


def test_e_mail_addresses_stay_out_of_repr() -> None:
    record = StaffRecord(staff_id="U-1").with_changes(
        StaffChanges(
            roster=Roster(email="kim@bank.example"), mailbox=Mailbox(email="kim@bank.example")
        ),
        "e",
    )

    assert "kim@bank.example" not in repr(record)
    assert "U-1" in repr(record)
