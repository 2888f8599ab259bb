"""`python -m local.coconut_emulator busy` against a running emulator."""

from __future__ import annotations

from rich.console import Console

from local.coconut_emulator import CoconutEmulator
from local.coconut_emulator.__main__ import main, parser


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
