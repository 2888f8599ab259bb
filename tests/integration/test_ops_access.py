"""Who may call the ops API, on the local stack: no principal → 401, `Sync.Read` → reads only,
`Sync.Operate` → commands too; and the audit line each request leaves, which names the caller by
object id only.

The local host stands in for App Service Authentication; its switch `LOCAL_PRINCIPAL_ROLES`
chooses who every caller is (local/host/principal.py). Besides the stack's own host (the default
local operator), one host per principal runs against the same storage and emulators. Every route
of function_app.py under `ops/` is tried, so a route added later is checked too.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.azurite import REPO_ROOT
from local.host.principal import PRINCIPAL_SWITCH, LocalPrincipal
from local.host_process import HostProcess
from local.stack import LocalStack
from sync.ops.auth import READ_ROUTES
from sync.ops.client import OpsClient
from tests.integration.conftest import eventually
from tests.integration.test_ops import Person, row

pytestmark = pytest.mark.integration

LOCAL = LocalPrincipal(())  # the object id, name and e-mail address every local principal has


@dataclass(frozen=True)
class OpsRoute:
    function: str
    method: str
    route: str


def ops_routes() -> list[OpsRoute]:
    """Every HTTP function of function_app.py whose route is under `ops/`."""
    tree = ast.parse((REPO_ROOT / "function_app.py").read_text())
    routes: list[OpsRoute] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (
                isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "route"
            ):
                continue
            options = {
                k.arg: ast.literal_eval(k.value)
                for k in decorator.keywords
                if k.arg in ("route", "methods")
            }
            if str(options.get("route", "")).startswith("ops/"):
                for method in options.get("methods", ["GET"]):
                    routes.append(OpsRoute(node.name, method, options["route"]))
    return routes


ROUTES = ops_routes()


@dataclass(frozen=True)
class Signed:
    host: HostProcess
    log: Path

    def call(self, route: OpsRoute, staff_id: str) -> httpx.Response:
        path = route.route.replace("{staff_id}", staff_id).replace("{command}", "resync")
        path = re.sub(r"\{[^}]+\}", "x", path)
        body = {"staff_ids": [staff_id]} if route.function == "ops_resync" else {}
        # A caller's own identity headers are never believed (the host drops them).
        forged = LocalPrincipal(("Sync.Read", "Sync.Operate")).headers()
        for _ in range(40):
            response = httpx.request(
                route.method,
                f"{self.host.base_url}/api/{path}",
                json=body if route.method == "POST" else None,
                headers=forged,
                timeout=30,
            )
            if response.status_code != 409:  # a worker holds the staff member: try again
                return response
        return response


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("host") / "host.log"
    with LocalStack(host_log=log) as running:
        yield running


@pytest.fixture(scope="module")
def signed_in(
    stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Signed]]:
    """One more host per principal: nobody, a reader, an operator (Sync.Operate only)."""
    logs = tmp_path_factory.mktemp("principals")
    hosts: dict[str, Signed] = {}
    try:
        for name, roles in (
            ("nobody", "none"),
            ("reader", "Sync.Read"),
            ("operator", "Sync.Operate"),
        ):
            log = logs / f"{name}.log"
            host = HostProcess(env={}, script_root=REPO_ROOT, log_path=log)
            host.env = {**stack.settings(host.port), PRINCIPAL_SWITCH: roles}
            hosts[name] = Signed(host.start(), log)
        yield hosts
    finally:
        for signed in hosts.values():
            signed.host.stop()


@pytest.fixture(scope="module")
def staff_id(stack: LocalStack) -> str:
    """A staff member the sync knows (booked through a webhook)."""
    assert stack.host is not None
    base_url = stack.host.base_url
    person = Person(stack)

    async def known() -> None:
        await person.book()
        with OpsClient(base_url) as ops:
            await eventually(lambda: row(ops, person.staff_id))

    asyncio.run(known())
    return person.staff_id


def audit_lines(log: Path) -> list[dict[str, str]]:
    """The ops records of a host log, as their `key=value` dimensions."""
    lines = [line for line in log.read_text().splitlines() if "sync.ops: ops " in line]
    return [dict(re.findall(r"(\w+)=(\S+)", line.split(" | ", 1)[1])) for line in lines]


def test_the_routes_are_found() -> None:
    assert {r.function for r in ROUTES} >= {*READ_ROUTES, "ops_staff_command", "ops_resync"}


def test_without_a_principal_every_ops_route_answers_401(
    signed_in: dict[str, Signed], staff_id: str
) -> None:
    for route in ROUTES:
        response = signed_in["nobody"].call(route, staff_id)
        assert response.status_code == 401, route
        assert response.json()["code"] == "unauthenticated"
        assert "not signed in" in response.json()["error"]


def test_a_reader_may_read_but_no_command(signed_in: dict[str, Signed], staff_id: str) -> None:
    for route in ROUTES:
        response = signed_in["reader"].call(route, staff_id)
        if route.function in READ_ROUTES:
            assert route.method == "GET"
            assert response.status_code == 200, (route, response.text)
        else:
            assert response.status_code == 403, route
            assert response.json()["code"] == "forbidden"
            assert "Sync.Operate" in response.json()["error"]


def test_an_operator_may_run_commands_and_read(signed_in: dict[str, Signed], staff_id: str) -> None:
    for route in ROUTES:
        response = signed_in["operator"].call(route, staff_id)
        # Commands that queue work answer 202; those done at once (replay, rotation) 200.
        done_at_once = route.function in ("ops_poison_replay", "ops_rotate_data_key")
        expected = 200 if route.method == "GET" or done_at_once else 202
        assert response.status_code == expected, (route, response.text)


def test_the_local_default_is_an_operator_so_the_demo_and_tools_need_no_sign_in(
    stack: LocalStack, staff_id: str
) -> None:
    assert stack.host is not None
    with OpsClient(stack.host.base_url) as ops:
        assert ops.detail(staff_id)["staff_id"] == staff_id
        assert ops.command(staff_id, "resync")["command"] == "resync"


def test_each_request_is_audited_by_object_id_command_and_staff_member(
    stack: LocalStack, signed_in: dict[str, Signed], staff_id: str
) -> None:
    operator, reader = signed_in["operator"], signed_in["reader"]
    command = next(r for r in ROUTES if r.function == "ops_staff_command")
    assert operator.call(command, staff_id).status_code == 202
    assert reader.call(command, staff_id).status_code == 403

    def matching(log: Path, status: str) -> list[dict[str, Any]]:
        return [
            line
            for line in audit_lines(log)
            if line.get("command") == "resync"
            and line.get("staff_id") == staff_id
            and line.get("http_status") == status
        ]

    done = matching(operator.log, "202")
    refused = matching(reader.log, "403")
    assert done, operator.log.read_text()[-2000:]
    assert refused
    for line in (done[-1], refused[-1]):
        assert line["caller_object_id"] == LOCAL.object_id
        assert line["operation"] == "ops_staff_command"
    assert (done[-1]["outcome"], refused[-1]["outcome"]) == ("ok", "forbidden")
    # An anonymous caller is recorded, without an object id.
    anonymous = audit_lines(signed_in["nobody"].log)
    assert anonymous
    assert all("caller_object_id" not in line for line in anonymous)
    assert {line["outcome"] for line in anonymous} == {"unauthenticated"}

    # The principal carries a name and an e-mail address, as a real sign-in does: no log holds them.
    assert stack.host_log is not None
    for log in (stack.host_log, *(s.log for s in signed_in.values())):
        text = log.read_text()
        assert LOCAL.name not in text
        assert LOCAL.email not in text
