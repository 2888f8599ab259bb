"""Coconut's record on its own: the revision rules, and what it lists for whom, in what order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from local.coconut_emulator.record import APPOINTMENTS, CoconutRecord
from local.coconut_emulator.webhooks import Coconut
from local.coconut_emulator.webhooks import payloads as p

JANE = p.staff_member("U-42", "jane.doe@bank.example", "Jane", "Doe")
OMAR = p.staff_member("U-43", "omar.ali@bank.example", "Omar", "Ali")
ACCOUNT = p.service("S-7", "Opening an account")


def appointment(appointment_id: str, revision: int, start: datetime) -> p.Appointment:
    return p.appointment(
        appointment_id,
        revision=revision,
        start=start,
        end=start.replace(hour=start.hour + 1),
        service=ACCOUNT,
        staff=[JANE],
    )


def test_only_a_newer_revision_replaces_and_a_deletion_is_final() -> None:
    record = CoconutRecord()
    start = datetime(2026, 12, 1, 9)

    assert record.put_appointment(appointment("A-1", 2, start)) is True
    assert record.put_appointment(appointment("A-1", 2, start)) is False
    assert record.put_appointment(appointment("A-1", 1, start)) is False
    assert record.delete(APPOINTMENTS, "A-1", 2) is False  # not newer than what is held
    assert record.delete(APPOINTMENTS, "A-1", 3) is True
    assert record.put_appointment(appointment("A-1", 9, start)) is False

    assert record.appointment("A-1") is None
    assert record.revision(APPOINTMENTS, "A-1") == 3
    assert record.is_deleted(APPOINTMENTS, "A-1")


def test_a_deletion_of_an_item_never_seen_is_kept() -> None:
    record = CoconutRecord()

    assert record.delete(APPOINTMENTS, "A-1", 4) is True
    assert record.put_appointment(appointment("A-1", 1, datetime(2026, 12, 1, 9))) is False


def test_listed_by_start_as_instants_whatever_the_offsets() -> None:
    record = CoconutRecord()
    # 09:00 in Toronto is 14:00 UTC, after 13:00 UTC.
    record.put_appointment(appointment("A-1", 1, datetime(2026, 12, 1, 9)))
    record.put_appointment(appointment("A-2", 1, datetime(2026, 12, 1, 13, tzinfo=UTC)))
    record.put_appointment(appointment("A-0", 1, datetime(2026, 12, 1, 13, tzinfo=UTC)))

    assert [item["id"] for item in record.appointments_of("U-42")] == ["A-0", "A-2", "A-1"]
    assert record.appointments_of("U-43") == []


def test_what_is_handed_out_is_a_copy() -> None:
    record = CoconutRecord()
    record.put_appointment(appointment("A-1", 1, datetime(2026, 12, 1, 9)))

    record.appointments_of("U-42")[0]["attributes"]["staff"].append(OMAR)

    assert record.appointments_of("U-43") == []


def test_concurrent_changes_each_get_their_own_revision() -> None:
    coconut = Coconut()
    appointment_id = coconut.book(
        staff=[JANE], start=datetime(2026, 12, 1, 9), end=datetime(2026, 12, 1, 10), service=ACCOUNT
    )["data"]["id"]
    revisions: list[int] = []
    lock = threading.Lock()

    def change() -> None:
        for _ in range(20):
            envelope = coconut.change_notes(appointment_id, "again")
            with lock:
                revisions.append(envelope["data"]["attributes"]["revision"])

    threads = [threading.Thread(target=change) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(revisions) == list(range(2, 82))
    assert coconut.revision(appointment_id) == 81
