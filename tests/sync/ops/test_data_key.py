"""Finishing a data key rotation: the command's report over the memory table and a table with
stale and unreadable rows, its HTTP answer, and the command line that calls it until done.
(The re-sealing itself, on Azurite: tests/sync/storage/test_item_table.py.)"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console

from sync.desired_state import DesiredItem, decide, readable_part
from sync.errors import ContentUnreadable
from sync.memory.storage import MemoryItemTable
from sync.ops import cli
from sync.ops.api import OpsApi
from sync.ops.auth import Caller, Role
from sync.ops.client import OpsClient
from sync.ops.data_key import DataKeyRotation
from sync.ports import StoredItem
from tests.sync.payloads import appointment_at

OPERATOR = Caller("0f9d3c1e-5a7b-4c2d-9e8f-123456789abc", frozenset({Role.OPERATE}))


def item(coconut_id: str) -> DesiredItem:
    record = decide(None, appointment_at(1, coconut_id=coconut_id)).record
    assert record is not None
    return record


class RotatingTable(MemoryItemTable):
    """Rows under the previous key until read; `lost` ones no configured key opens."""

    def __init__(self, stale: list[str], lost: list[str]) -> None:
        super().__init__()
        self.stale = set(stale) | set(lost)
        self.lost = set(lost)

    async def scan(
        self, *, ended_before: datetime | None = None, deleted_before: datetime | None = None
    ) -> list[StoredItem]:
        return [
            StoredItem(readable_part(record), etag, True, stale_key=key in self.stale)
            for key, (record, etag) in self.items.items()
        ]

    async def read(
        self, key: str, *, with_content: bool = True
    ) -> tuple[DesiredItem | None, str | None]:
        if key in self.lost:
            raise ContentUnreadable(key, "sealed under key 0123456789abcdef")
        self.stale.discard(key)
        return await super().read(key, with_content=with_content)


async def table_with(stale: list[str], lost: list[str], fresh: list[str]) -> RotatingTable:
    table = RotatingTable([f"appointment:{i}" for i in stale], [f"appointment:{i}" for i in lost])
    for coconut_id in [*stale, *lost, *fresh]:
        await table.swap(item(coconut_id), None)
    return table


async def test_a_table_without_keys_has_nothing_to_rotate() -> None:
    table = MemoryItemTable()
    await table.swap(item("A-1"), None)

    report = await DataKeyRotation(table, "k-new").finish()

    assert (report.complete, report.resealed, report.remaining) == (True, 0, 0)


async def test_every_stale_row_is_read_and_the_unreadable_ones_are_named() -> None:
    table = await table_with(["A-1", "A-2"], ["A-3"], ["A-4"])

    report = await DataKeyRotation(table, "k-new").finish()

    assert report.key_id == "k-new"
    assert (report.resealed, report.remaining) == (2, 1)
    assert report.unreadable == ["appointment:A-3"]
    assert not report.complete


async def test_a_spent_budget_leaves_the_rest_for_the_next_call() -> None:
    table = await table_with(["A-1", "A-2"], [], [])

    first = await DataKeyRotation(table, "k").finish(budget_seconds=-1)
    second = await DataKeyRotation(table, "k").finish()

    assert (first.remaining, first.complete) == (2, False)
    assert (second.resealed, second.complete) == (2, True)


async def test_the_api_answers_with_the_report() -> None:
    table = await table_with(["A-1"], [], [])
    api = OpsApi(None, None, None, DataKeyRotation(table, "k"))  # type: ignore[arg-type]

    reply = await api.rotate_data_key(caller=OPERATOR)

    assert reply.status == 200
    assert json.loads(reply.json()) == {
        "key_id": "k",
        "resealed": 1,
        "remaining": 0,
        "unreadable": [],
        "complete": True,
    }
    no_rotation = OpsApi(None, None, None)  # type: ignore[arg-type]
    unavailable = await no_rotation.rotate_data_key(caller=OPERATOR)
    assert (unavailable.status, unavailable.body["code"]) == (400, "bad_input")


def cli_against(answers: list[dict[str, Any]]) -> tuple[int, str, list[str]]:
    """Run `rotate-data-key` against an API answering `answers` in turn."""
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json=answers[min(len(calls), len(answers)) - 1])

    out = io.StringIO()
    client = OpsClient("http://ops.test", transport=httpx.MockTransport(answer))
    with client:
        runner = cli.Cli(client, Console(file=out, width=200), as_json=False)
        complete = runner.rotate_data_key()
    return (0 if complete else 1), out.getvalue(), calls


def test_the_command_line_calls_until_the_rotation_is_complete() -> None:
    moving = {"key_id": "k", "resealed": 40, "remaining": 2, "unreadable": [], "complete": False}
    done = {"key_id": "k", "resealed": 2, "remaining": 0, "unreadable": [], "complete": True}

    code, out, calls = cli_against([moving, done])

    assert code == 0
    assert calls == ["POST /api/ops/data-key/rotate"] * 2
    assert "42 record(s) re-sealed" in out
    assert "rotation complete" in out


def test_the_command_line_stops_when_nothing_moves_and_names_what_is_left() -> None:
    stuck = {
        "key_id": "k",
        "resealed": 0,
        "remaining": 1,
        "unreadable": ["appointment:A-3"],
        "complete": False,
    }

    code, out, calls = cli_against([stuck])

    assert code == 1
    assert len(calls) == 1
    assert "1 left" in out
    assert "appointment:A-3" in out


def test_the_command_is_in_the_parser() -> None:
    assert cli.parser().parse_args(["rotate-data-key"]).command == "rotate-data-key"
