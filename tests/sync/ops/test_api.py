"""Input checks and the JSON answers of the ops API, with the ops modules replaced by fakes."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel

from sync.errors import StorageUnavailable
from sync.ops.api import OpsApi, ReplayBody, ResyncBody, parse_body, parse_status
from sync.ops.auth import Caller, Role
from sync.ops.errors import BadInput, StaffLeased, UnknownStaff


class Answer(BaseModel):
    staff_id: str


class FakeView:
    async def overview(self, status: str | None = None) -> BaseModel:
        raise UnknownStaff("U-9")

    async def detail(self, staff_id: str) -> BaseModel:
        if staff_id == "down":
            raise StorageUnavailable("storage answered 503")
        return Answer(staff_id=staff_id)


class FakeCommands:
    async def run(self, command: str, staff_id: str) -> BaseModel:
        raise StaffLeased(staff_id, 4.2)


OPERATOR = Caller("0f9d3c1e-5a7b-4c2d-9e8f-123456789abc", frozenset({Role.OPERATE}))


def api() -> OpsApi:
    return OpsApi(FakeView(), FakeCommands(), None)  # type: ignore[arg-type]


def test_status_filter_is_case_insensitive_and_unknown_ones_are_refused() -> None:
    assert parse_status("error") == "Error"
    assert parse_status(None) is None
    assert parse_status("") is None
    with pytest.raises(BadInput, match="one of Syncing"):
        parse_status("Asleep")


def test_body_errors_name_the_fields_never_the_values_or_unknown_keys() -> None:
    with pytest.raises(BadInput) as unknown:
        parse_body(ResyncBody, b'{"jane.doe@example.com": true}')
    assert "jane.doe" not in unknown.value.message
    assert "unknown field" in unknown.value.message
    with pytest.raises(BadInput) as wrong:
        parse_body(ReplayBody, b'{"staff_id": 5, "limit": "Jane Doe"}')
    assert "Jane" not in wrong.value.message
    assert "limit" in wrong.value.message
    with pytest.raises(BadInput):
        parse_body(ReplayBody, b"not json")
    assert parse_body(ReplayBody, b"") == ReplayBody()


async def test_resync_needs_all_or_a_list_not_both() -> None:
    for body in (b"{}", b'{"all": true, "staff_ids": ["U-1"]}'):
        reply = await api().resync(body, caller=OPERATOR)
        assert reply.status == 400
        assert reply.body["code"] == "bad_input"


async def test_errors_become_json_with_status_and_code(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sync.ops")
    unknown = await api().staff_list({}, caller=OPERATOR)
    assert (unknown.status, unknown.body["code"]) == (404, "unknown_staff")
    leased = await api().staff_command("U-1", "disconnect", caller=OPERATOR)
    assert (leased.status, leased.body["code"], leased.body["retry_after"]) == (409, "leased", 4)
    down = await api().staff_detail("down", caller=OPERATOR)
    assert (down.status, down.body["code"]) == (503, "unavailable")
    found = await api().staff_detail("U-1", caller=OPERATOR)
    assert (found.status, json.loads(found.json())) == (200, {"staff_id": "U-1"})
    records = [r for r in caplog.records if r.name == "sync.ops"]
    outcomes: list[Any] = [
        (r.__dict__["operation"], r.__dict__["command"], r.__dict__["outcome"]) for r in records
    ]
    assert outcomes == [
        ("ops_staff_list", "status", "unknown_staff"),
        ("ops_staff_command", "disconnect", "leased"),
        ("ops_staff_detail", "show", "unavailable"),
        ("ops_staff_detail", "show", "ok"),
    ]
    assert records[1].__dict__["staff_id"] == "U-1"
    # Each answer is an audit record naming the caller by object id.
    assert {r.__dict__["caller_object_id"] for r in records} == {OPERATOR.object_id}
