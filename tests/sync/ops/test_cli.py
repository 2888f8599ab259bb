"""The pure parts of the command line: what counts as finished, and the tables it prints."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from rich.console import Console

from sync.ops import signin
from sync.ops.cli import (
    LEASED_TRIES,
    Cli,
    counts_line,
    finished,
    main,
    parser,
    poison_table,
    staff_table,
)
from sync.ops.client import OpsRefused

SINCE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (SINCE + timedelta(seconds=seconds)).isoformat()


def test_finished_means_an_outcome_recorded_after_the_request() -> None:
    rows: list[dict[str, Any]] = [
        {"staff_id": "U-1", "status": "Syncing", "status_at": at(5)},
        {"staff_id": "U-2", "status": "Error", "status_at": at(1)},
        {"staff_id": "U-3", "status": "Syncing", "status_at": at(-60)},  # before the request
        {"staff_id": "U-4", "status": "Pending", "status_at": at(1)},  # a reconnect's own mark
        {"staff_id": "U-5", "status": "Disconnecting", "status_at": at(2)},
        {"staff_id": "U-6", "status": "Warning", "status_at": None},
        {"staff_id": "U-7", "status": "Syncing", "status_at": at(9)},  # not asked about
    ]
    wanted = {f"U-{n}" for n in range(1, 7)}
    assert finished(rows, SINCE, wanted) == {"U-1", "U-2"}


def render(table: object) -> str:
    out = io.StringIO()
    Console(file=out, width=160).print(table)
    return out.getvalue()


def test_the_staff_table_has_one_readable_row_per_staff_member() -> None:
    text = render(
        staff_table(
            {
                "staff": [
                    {
                        "staff_id": "U-42",
                        "status": "Error",
                        "reason": "Graph denied access to the mailbox",
                        "last_sync_at": at(0),
                        "pending": 3,
                        "events": 12,
                        "leased_until": at(30),
                    }
                ]
            }
        )
    )
    line = next(line for line in text.splitlines() if "U-42" in line)
    for expected in ("Error", "Graph denied access", "2026-12-01 12:00:00", " 3 ", " 12 ", "yes"):
        assert expected in line


def test_counts_line_lists_every_status() -> None:
    line = counts_line({"Syncing": 5, "Warning": 1, "Error": 0}).plain
    assert line == "Syncing 5  Warning 1  Error 0"


def test_arguments() -> None:
    args = parser().parse_args(["--url", "http://x", "resync", "--all", "--wait"])
    assert (args.command, args.all, args.wait, args.url) == ("resync", True, 600.0, "http://x")
    assert parser().parse_args(["backfill"]).wait == 3600.0
    assert parser().parse_args(["disconnect", "U-1"]).wait is None
    poison = parser().parse_args(["poison", "replay", "--staff", "U-1"])
    assert (poison.action, poison.staff) == ("replay", "U-1")


def test_a_remote_app_without_an_audience_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SYNC_OPS_AUDIENCE", raising=False)
    out = io.StringIO()
    code = main(["--url", "https://func-x.azurewebsites.net", "status"], Console(file=out))
    assert code == 2
    assert "SYNC_OPS_AUDIENCE" in out.getvalue()


class NoSignIn:
    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token\nmore")


def test_a_failed_sign_in_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "credential", lambda **_: NoSignIn())
    out = io.StringIO()
    code = main(
        ["--url", "https://func-x.invalid", "--audience", "api://x", "status"],
        Console(file=out, width=300),
    )
    assert code == 2
    assert "cannot sign in: DefaultAzureCredential failed to retrieve a token" in out.getvalue()
    assert "more" not in out.getvalue()


class BusyThenFree:
    """An ops API that refuses a command while a worker holds the staff member, `busy` times."""

    def __init__(self, busy: int, code: str = "leased") -> None:
        self.busy, self.code, self.calls = busy, code, 0

    def command(self, staff_id: str, command: str) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.busy:
            raise OpsRefused(409, self.code, "being synced", {"retry_after": 0})
        return {"staff_id": staff_id, "command": command}


def test_a_command_waits_while_a_worker_holds_the_staff_member() -> None:
    api = BusyThenFree(busy=2)
    out = io.StringIO()
    cli = Cli(api, Console(file=out), as_json=False)  # type: ignore[arg-type]

    answer = cli.when_free("U-42", "resync")

    assert answer == {"staff_id": "U-42", "command": "resync"}
    assert api.calls == 3
    assert out.getvalue().count("trying again") == 2


def test_a_command_gives_up_after_a_few_tries_and_other_refusals_at_once() -> None:
    stuck, refused = BusyThenFree(busy=100), BusyThenFree(busy=1, code="unknown_staff")

    with pytest.raises(OpsRefused):
        Cli(stuck, Console(file=io.StringIO()), as_json=False).when_free("U-42", "resync")  # type: ignore[arg-type]
    with pytest.raises(OpsRefused):
        Cli(refused, Console(file=io.StringIO()), as_json=False).when_free("U-42", "resync")  # type: ignore[arg-type]

    assert (stuck.calls, refused.calls) == (LEASED_TRIES, 1)


def test_the_poison_table_names_a_batchs_staff_and_marks_an_unreadable_message() -> None:
    listing = {
        "length": 3,
        "messages": [
            {"id": "m1", "staff_id": "U-1", "staff_ids": ["U-1"], "reason": "webhook"},
            {"id": "m2", "staff_id": None, "staff_ids": [f"U-{n}" for n in range(10, 60)]},
            {"id": "m3", "staff_id": None, "staff_ids": []},
        ],
    }
    text = render(poison_table(listing))
    assert "U-1 " in text
    assert "50 staff: U-10, U-11, U-12, ..." in text
    assert "(unreadable)" in text
