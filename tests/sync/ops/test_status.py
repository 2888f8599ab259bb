"""The status an administrator sees, from what the worker and the ops commands record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.export.planning import EventLink
from sync.memory.storage import MemoryItemLinks, MemoryStaffStore
from sync.ops.errors import UnknownStaff
from sync.ops.status import STATUSES, StatusView, count_by_status, effective_status, summarize
from sync.staff_record import (
    Connection,
    Lease,
    Mailbox,
    Outcome,
    RecordedStatus,
    Roster,
    StaffChanges,
    StaffRecord,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(changes: StaffChanges | None = None, staff_id: str = "U-1") -> StaffRecord:
    return StaffRecord(staff_id=staff_id).with_changes(changes or StaffChanges(), "etag")


def recorded(
    status: RecordedStatus, *, roster: Roster | None = None, connection: Connection | None = None
) -> StaffRecord:
    return record(
        StaffChanges(outcome=Outcome(status=status), roster=roster, connection=connection)
    )


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (record(), "Pending"),
        (record(StaffChanges(roster=Roster(email="a@b.example"))), "Pending"),
        (recorded("Syncing"), "Syncing"),
        (recorded("Warning"), "Warning"),
        (recorded("Error"), "Error"),
        (recorded("Disabled"), "Disabled"),
        (recorded("Pending"), "Pending"),
        (recorded("Syncing", roster=Roster(calendar_sync=False)), "Disabled"),
        (recorded("Syncing", roster=Roster(calendar_sync=True)), "Syncing"),
        (recorded("Syncing", connection=Connection(disconnected=True)), "Disconnecting"),
        (recorded("Disconnected", connection=Connection(disconnected=True)), "Disconnected"),
        # A disconnect outranks calendar sync being switched off.
        (
            recorded(
                "Disconnected",
                connection=Connection(disconnected=True),
                roster=Roster(calendar_sync=False),
            ),
            "Disconnected",
        ),
        # Reconnected: the flag wins over a stale recorded status.
        (recorded("Disconnected", connection=Connection(disconnected=False)), "Pending"),
        (recorded(""), "Pending"),
    ],
)
def test_effective_status(stored: StaffRecord, expected: str) -> None:
    assert effective_status(stored) == expected


def test_a_lease_shows_only_while_it_is_held() -> None:
    def leased(owner: str, until: datetime) -> StaffRecord:
        return record(StaffChanges(lease=Lease(owner=owner, until=until)))

    later = NOW + timedelta(minutes=1)
    assert summarize(leased("worker-1", later), 0, NOW).leased_until == later
    assert summarize(leased("", later), 0, NOW).leased_until is None
    assert summarize(leased("worker-1", NOW - timedelta(seconds=1)), 0, NOW).leased_until is None


def test_summary_carries_reason_times_work_and_events() -> None:
    row = summarize(
        record(
            StaffChanges(
                outcome=Outcome(status="Error", reason="Graph denied access", at=NOW, event_count=7)
            )
        ),
        3,
        NOW,
    )
    assert (row.status, row.reason, row.status_at, row.pending, row.events) == (
        "Error",
        "Graph denied access",
        NOW,
        3,
        7,
    )
    assert row.last_sync_at is None


def test_counts_name_every_status_even_at_zero() -> None:
    statuses: tuple[RecordedStatus, ...] = ("Syncing", "Syncing", "Error")
    counts = count_by_status(summarize(recorded(s), 0, NOW) for s in statuses)
    assert list(counts) == list(STATUSES)
    assert counts["Syncing"] == 2
    assert counts["Error"] == 1
    assert counts["Warning"] == 0, "a zero lets the staff-in-Error alert resolve"


# ----- the view over the stores ------------------------------------------------------------------


async def stores() -> tuple[MemoryStaffStore, MemoryItemLinks]:
    staff, links = MemoryStaffStore(), MemoryItemLinks()
    synced = Outcome(status="Syncing", at=NOW, last_sync_at=NOW, event_count=2)
    await staff.create(
        "U-1",
        StaffChanges(
            roster=Roster(email="kim@bank.example", calendar_sync=True),
            mailbox=Mailbox(email="kim@bank.example", user_id="user-1", time_zone="UTC"),
            outcome=synced,
        ),
    )
    await staff.create("U-2", StaffChanges(outcome=Outcome(status="Error", reason="denied")))
    await staff.create("U-3", StaffChanges(connection=Connection(disconnected=True)))
    for key in ("appointment:2", "appointment:1"):
        await links.mark_pending(["U-1"], key)
    await links.mark_pending(["U-2"], "appointment:1")
    # A confirmed event, no longer pending, and a create whose answer was lost.
    [done] = [r for r in await links.rows("U-1") if r.item_key == "appointment:2"]
    await links.save_link(done, EventLink(item_key="appointment:2", event_id="ev-1"), done=True)
    await links.mark_pending(["U-1"], "appointment:3")
    [lost] = [r for r in await links.rows("U-1") if r.item_key == "appointment:3"]
    unconfirmed = EventLink(item_key="appointment:3", pending_create=True)
    await links.save_link(lost, unconfirmed, done=True)
    return staff, links


async def test_the_overview_counts_every_staff_member_and_filters_by_status() -> None:
    view = StatusView(*await stores())

    everyone = await view.overview()
    assert everyone.total == 3
    assert [(s.staff_id, s.status, s.pending) for s in everyone.staff] == [
        ("U-1", "Syncing", 2),
        ("U-2", "Error", 1),
        ("U-3", "Disconnecting", 0),
    ]
    assert everyone.counts["Syncing"] == everyone.counts["Error"] == 1
    assert sum(everyone.counts.values()) == 3
    in_error = await view.overview("Error")
    assert [s.staff_id for s in in_error.staff] == ["U-2"]
    assert in_error.total == 3, "the total counts everyone, not just those shown"
    assert await view.counts() == everyone.counts


async def test_the_detail_names_the_mailbox_and_the_items_still_waiting() -> None:
    view = StatusView(*await stores())

    detail = await view.detail("U-1")

    assert (detail.email, detail.user_id, detail.time_zone) == (
        "kim@bank.example",
        "user-1",
        "UTC",
    )
    assert detail.items == 3
    assert detail.pending_items == ["appointment:1", "appointment:3"]
    assert detail.pending == 2
    assert (detail.events, detail.last_sync_at) == (2, NOW)
    assert detail.calendar_sync is True
    assert detail.subscription_expires_at is None
    with pytest.raises(UnknownStaff):
        await view.detail("U-9")
