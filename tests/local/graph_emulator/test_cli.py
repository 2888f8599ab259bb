"""The command line: `serve` with a seed file, and `calendar` printing a mailbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from local.azurite import REPO_ROOT, free_port, wait_for_port
from local.graph_emulator.cli import main
from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import event_body


def test_calendar_prints_the_mailbox_in_its_time_zone(
    emulator: GraphEmulator,
    jane: User,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    emulator.create_event_as_person(jane.id, event_body("Mortgage advice"))

    code = main(
        [
            "calendar",
            "--url",
            emulator.root_url,
            "--user",
            "jane.doe@bank.example",
            "--start",
            "2030-03-10T00:00:00Z",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "Mortgage advice" in out
    assert "2030-03-11 09:00" in out  # W. Europe time, as the mailbox shows it


def test_serve_loads_a_seed_file(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "users": [
                    {
                        "userPrincipalName": "sam@bank.onmicrosoft.com",
                        "mail": "sam@bank.example",
                        "displayName": "Sam Lee",
                        "timeZone": "Pacific Standard Time",
                    }
                ],
                "events": [{"user": "sam@bank.onmicrosoft.com", **event_body("Seeded")}],
            }
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.graph_emulator",
            "serve",
            "--port",
            str(port),
            "--seed",
            str(seed),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}/v1.0"
        users = httpx.get(f"{base}/users", params={"$filter": "mail eq 'SAM@bank.example'"}).json()
        user_id = users["value"][0]["id"]
        events = httpx.get(f"{base}/users/{user_id}/events").json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert [ev["subject"] for ev in events["value"]] == ["Seeded"]


def test_mailbox_and_fault_commands_drive_the_running_emulator(
    emulator: GraphEmulator, jane: User, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--url", emulator.root_url]
    base = f"{emulator.base_url}/users/{jane.id}"

    assert main(["mailbox", *url, "--user", jane.user_principal_name, "--disable"]) == 0
    disabled = httpx.get(f"{base}/events")
    assert main(["mailbox", *url, "--user", jane.id, "--enable"]) == 0
    capsys.readouterr()
    assert main(["fault-add", *url, "--rule", '{"kind": "invalidToken", "times": 1}']) == 0
    name = capsys.readouterr().out.strip()
    expired = httpx.get(f"{base}/events")
    assert main(["fault-add", *url, "--rule", '{"kind": "unavailable", "name": "down"}']) == 0
    assert main(["fault-clear", *url, "down"]) == 0
    served = httpx.get(f"{base}/events")

    assert disabled.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    assert name == "rule-1"
    assert expired.status_code == 401
    assert served.status_code == 200


def test_person_commands_move_and_delete_events(emulator: GraphEmulator, jane: User) -> None:
    url = ["--url", emulator.root_url]
    moved = emulator.create_event_as_person(jane.id, event_body("Moved"))
    deleted = emulator.create_event_as_person(jane.id, event_body("Deleted"))

    assert (
        main(
            ["move-event", *url, "--user", jane.id, "--event", moved.id, "--calendar", "Birthdays"]
        )
        == 0
    )
    assert main(["delete-event", *url, "--user", jane.id, "--event", deleted.id]) == 0

    assert emulator.events(jane.id) == []
    assert [e["subject"] for e in emulator.events(jane.id, "Birthdays")] == ["Moved"]
    assert [e["subject"] for e in emulator.deleted_items(jane.id)] == ["Deleted"]
