"""`python -m local.coconut_emulator ...` against a running emulator."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console

from local.coconut_emulator import CoconutEmulator
from local.coconut_emulator.__main__ import main, parser
from local.coconut_emulator.webhooks import payloads


def test_busy_prints_a_users_external_events(emulator: CoconutEmulator) -> None:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    emulator.put_external_event(
        "U-42",
        {
            "type": "external-events",
            "id": "evt-1",
            "attributes": {
                "title": "Busy",
                "start": "2026-12-02T15:00:00Z",
                "end": "2026-12-02T16:00:00Z",
                "all_day": False,
                "show_as": "tentative",
            },
        },
    )
    console = Console(record=True, width=200)

    code = main(["busy", "U-42", "--url", f"http://127.0.0.1:{emulator.port}"], console)

    output = console.export_text()
    assert code == 0
    assert "evt-1" in output
    assert "2026-12-02T15:00:00Z" in output
    assert "tentative" in output


def test_busy_for_an_unknown_user_fails(emulator: CoconutEmulator) -> None:
    console = Console(record=True, width=200)

    code = main(["busy", "U-9", "--url", f"http://127.0.0.1:{emulator.port}"], console)

    assert code == 1
    assert "U-9" in console.export_text()


def test_serve_takes_port_key_and_faults() -> None:
    args = parser().parse_args(
        ["serve", "--port", "8082", "--api-key", "K", "--throttle-rate", "0.1", "--seed", "3"]
    )

    assert (args.port, args.api_key, args.throttle_rate, args.seed) == (8082, "K", 0.1, 3)


def run(emulator: CoconutEmulator, *argv: str) -> tuple[int, str]:
    console = Console(record=True, width=200)
    code = main([*argv, "--url", f"http://127.0.0.1:{emulator.port}"], console)
    return code, console.export_text()


def test_serve_takes_the_listing_race() -> None:
    assert parser().parse_args(["serve", "--listing-race"]).listing_race is True
    assert parser().parse_args(["serve"]).listing_race is False


def test_calendar_sync_is_switched_in_the_roster(emulator: CoconutEmulator) -> None:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")

    off = run(emulator, "calendar-sync", "U-42", "off")
    assert off == (0, "calendar sync of U-42: off\n")
    assert [user.calendar_sync for user in emulator.users()] == [False]

    assert run(emulator, "calendar-sync", "U-42", "on")[0] == 0
    assert [user.calendar_sync for user in emulator.users()] == [True]
    code, output = run(emulator, "calendar-sync", "U-9", "on")
    assert code == 1
    assert "404" in output


def test_record_changes_go_into_the_record_without_a_webhook(emulator: CoconutEmulator) -> None:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    emulator.add_user("U-43", "omar.ali@bank.example", "Omar", "Ali")

    code, output = run(
        emulator,
        "record", "book", "--staff", "U-42", "--start", "2026-12-01T14:00:00",
        "--end", "2026-12-01T14:30:00", "--service-name", "Mortgage", "--id", "A-7",
        "--location-id", "L-3", "--location-address", "100 King St W",
    )  # fmt: skip
    assert (code, output) == (
        0,
        "appointment.created A-7 revision 1: in the record, no webhook sent\n",
    )
    (booked,) = emulator.appointments("U-42")
    assert booked["attributes"]["service"]["name"] == "Mortgage"
    assert booked["attributes"].get("location") == {
        "id": "L-3",
        "name": "Branch",
        "address": "100 King St W",
    }

    steps = [
        ("record", "reschedule", "A-7", "--start", "2026-12-02T09:00:00-05:00",
         "--end", "2026-12-02T10:00:00-05:00"),
        ("record", "reassign", "A-7", "--staff", "U-43", "--staff", "U-42"),
        ("record", "cancel", "A-7"),
    ]  # fmt: skip
    assert [run(emulator, *step)[0] for step in steps] == [0, 0, 0]
    (item,) = emulator.appointments("U-43")
    assert item["attributes"]["start"] == "2026-12-02T09:00:00-05:00"
    assert [staff["id"] for staff in item["attributes"]["staff"]] == ["U-43", "U-42"]
    assert (item["attributes"]["status"], item["attributes"]["revision"]) == ("cancelled", 4)

    code, output = run(emulator, "record", "delete", "A-7")
    assert output == "appointment.deleted A-7 revision 5: in the record, no webhook sent\n"
    assert emulator.appointments("U-42") == emulator.appointments("U-43") == []
    code, output = run(emulator, "record", "delete", "A-7")
    assert code == 1
    assert "404" in output


def test_absences_are_recorded_changed_and_deleted(emulator: CoconutEmulator) -> None:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")

    code, _ = run(
        emulator,
        "record", "absence", "--staff", "U-42", "--start", "2026-12-20T00:00:00",
        "--end", "2027-01-04T00:00:00", "--all-day", "--id", "N-5",
    )  # fmt: skip
    assert code == 0
    run(emulator, "record", "change-absence", "N-5", "--title", "Parental leave", "--no-all-day")
    (absence,) = emulator.unavailabilities("U-42")
    assert absence["attributes"]["title"] == "Parental leave"
    assert absence["attributes"]["all_day"] is False
    assert absence["attributes"]["revision"] == 2

    assert run(emulator, "record", "delete-absence", "N-5")[0] == 0
    assert emulator.unavailabilities("U-42") == []


def test_a_refused_change_names_the_field(emulator: CoconutEmulator) -> None:
    code, output = run(
        emulator,
        "record", "book", "--staff", "U-9",
        "--start", "2026-12-01T14:00:00", "--end", "2026-12-01T14:30:00",
    )  # fmt: skip

    assert code == 1
    assert "/staff/0" in output


def test_the_record_is_printed_without_customer_data(emulator: CoconutEmulator) -> None:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    emulator.book(
        staff=["U-42"],
        start=datetime(2026, 12, 1, 14),
        end=datetime(2026, 12, 1, 14, 30),
        service=payloads.service("S-7", "Opening an account"),
        attendees=[payloads.attendee("C-9", "Sam", "Lee", email="sam.lee@example.com")],
        notes="Customer prefers French.",
        appointment_id="A-1",
    )
    emulator.record_absence(
        staff="U-42", start=datetime(2026, 12, 20), end=datetime(2027, 1, 4), title="Vacation"
    )

    code, appointments = run(emulator, "appointments", "U-42")
    assert code == 0
    assert "A-1" in appointments
    assert "2026-12-01T14:00:00-05:00" in appointments
    assert "Opening an account" in appointments
    for private in ("Sam", "Lee", "sam.lee", "French"):
        assert private not in appointments

    code, absences = run(emulator, "absences", "U-42")
    assert code == 0
    assert "Vacation" in absences
    assert "2026-12-20T00:00:00-05:00" in absences
