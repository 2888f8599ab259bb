"""The ops audit trail: who (object id), what (command), for whom (staff), how it ended."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from sync.ops.api import OpsApi, refusal_reply
from sync.ops.audit import LISTED_STAFF, command_of, staff_list_dimensions
from sync.ops.auth import Caller, MissingRole, NotSignedIn, Role
from sync.ops.commands import TenantResync

OBJECT_ID = "830ee0eb-3e58-4e2b-9b97-8f65c2040221"
READER = Caller(OBJECT_ID, frozenset({Role.READ}))


def audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.__dict__ for r in caplog.records if r.name == "sync.ops"]


def test_commands_are_named_by_route_and_only_known_ones_from_the_caller() -> None:
    assert command_of("ops_staff_list") == "status"
    assert command_of("ops_resync") == "resync_all"
    assert command_of("ops_staff_command", "disconnect") == "disconnect"
    # Whatever else a caller writes in the route is not copied into the logs.
    assert command_of("ops_staff_command", "jane.doe@bank.example") == "unknown"
    assert command_of("ops_rotate_data_key") == "rotate_data_key"


def test_many_staff_are_recorded_by_count_and_first_ids() -> None:
    assert staff_list_dimensions(None) == {"scope": "all"}
    many = [f"U-{n}" for n in range(LISTED_STAFF + 5)]
    recorded = staff_list_dimensions(many)
    assert recorded["staff_count"] == LISTED_STAFF + 5
    assert str(recorded["staff_ids"]).endswith(",+5 more")
    assert staff_list_dimensions(["U-1"]) == {
        "scope": "listed",
        "staff_count": 1,
        "staff_ids": "U-1",
    }


def test_a_refused_caller_is_recorded_by_object_id_with_the_staff_member(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "sync.ops")
    route = {"staff_id": "U-42", "command": "disconnect"}
    reply = refusal_reply(MissingRole(READER, Role.OPERATE), "ops_staff_command", route)
    assert (reply.status, reply.body["code"]) == (403, "forbidden")
    [record] = audit(caplog)
    assert record["caller_object_id"] == OBJECT_ID
    assert (record["command"], record["staff_id"], record["outcome"]) == (
        "disconnect",
        "U-42",
        "forbidden",
    )


def test_an_anonymous_callers_route_text_is_not_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "sync.ops")
    route = {"staff_id": "jane.doe@bank.example", "command": "disconnect"}
    reply = refusal_reply(NotSignedIn(), "ops_staff_command", route)
    assert (reply.status, reply.body["code"]) == (401, "unauthenticated")
    [record] = audit(caplog)
    assert "caller_object_id" not in record
    assert "staff_id" not in record
    assert "jane" not in caplog.text


class Accepted:
    async def resync_all(self, staff_ids: list[str] | None) -> TenantResync:
        return TenantResync(requested_at=datetime.now(UTC), staff_ids=[], roster_size=None)


async def test_a_resync_of_listed_staff_records_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sync.ops")
    api = OpsApi(None, Accepted(), None)  # type: ignore[arg-type]
    operator = Caller(OBJECT_ID, frozenset({Role.OPERATE}))
    reply = await api.resync(b'{"staff_ids": ["U-1", "U-2"]}', caller=operator)
    assert reply.status == 202
    [record] = audit(caplog)
    assert (record["operation"], record["command"], record["staff_ids"]) == (
        "ops_resync",
        "resync_all",
        "U-1,U-2",
    )
    assert record["caller_object_id"] == OBJECT_ID
