"""infra/scripts/register-ops-api.sh and the registration it writes (infra/scripts/ops-api/).

The app roles the registration declares are exactly the ones the function checks
(sync/ops/auth.py). The script runs against a stand-in `az` (first on PATH) that keeps the
registration, its service principal and its role assignments like Microsoft Graph would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import pytest

from sync.ops.auth import Role
from tests.infra.conftest import INFRA

SCRIPT: Final = INFRA / "scripts/register-ops-api.sh"
APPLICATION: Final = json.loads((INFRA / "scripts/ops-api/application.json").read_text())
PREAUTHORIZED: Final = json.loads((INFRA / "scripts/ops-api/preauthorized.json").read_text())
AZURE_CLI: Final = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
OPERATOR: Final = "11111111-2222-4333-8444-555555555555"
READER: Final = "66666666-7777-4888-8999-000000000000"

FAKE_AZ: Final = f'''#!{sys.executable}
"""Stand-in for the Azure CLI: state in $FAKE_AZ_STATE."""
import json, os, re, sys, uuid

args = sys.argv[1:]
path = os.environ["FAKE_AZ_STATE"]
with open(path) as f:
    state = json.load(f)

def option(name):
    return args[args.index(name) + 1] if name in args else ""

def body():
    text = option("--body")
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    return json.loads(text)

url = option("--url")
method = option("--method")
state["calls"].append(" ".join(a for a in args if not a.startswith("{{")))
app = re.search(r"applications\\(uniqueName='([^']+)'\\)", url)
if args[:1] == ["rest"] and app:
    name = app.group(1)
    if method == "PATCH":
        if name not in state["apps"]:
            assert "Prefer=create-if-missing" in args, "the first update must create the app"
            state["apps"][name] = {{"appId": str(uuid.uuid4())}}
        state["apps"][name].update(body())
    else:
        print(state["apps"][name]["appId"])
elif args[:3] == ["ad", "sp", "list"]:
    app_id = re.search(r"appId eq '([^']+)'", option("--filter")).group(1)
    print(state["sps"].get(app_id, {{}}).get("id", ""))
elif args[:3] == ["ad", "sp", "create"]:
    sp = {{"id": str(uuid.uuid4()), "appRoleAssignmentRequired": False}}
    state["sps"][option("--id")] = sp
    print(sp["id"])
elif args[:3] == ["ad", "sp", "update"]:
    assert option("--set") == "appRoleAssignmentRequired=true"
    for sp in state["sps"].values():
        if sp["id"] == option("--id"):
            sp["appRoleAssignmentRequired"] = True
elif args[:1] == ["rest"] and url.split("?")[0].endswith("/appRoleAssignedTo"):
    if method == "GET":
        print("\\n".join("\\t".join(a) for a in state["assignments"]))
    else:
        granted = body()
        state["assignments"].append([granted["principalId"], granted["appRoleId"]])
        state["posted"].append([granted["principalId"], granted["appRoleId"]])
else:
    sys.exit("fake az: unexpected call " + " ".join(args))
with open(path, "w") as f:
    json.dump(state, f)
'''


@dataclass(frozen=True)
class Run:
    status: int
    output: str
    state: dict[str, Any]


class Register(Protocol):
    def __call__(self, *args: str) -> Run: ...


@pytest.fixture
def register(tmp_path: Path) -> Register:
    (tmp_path / "bin").mkdir()
    az = tmp_path / "bin/az"
    az.write_text(FAKE_AZ)
    az.chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"apps": {}, "sps": {}, "assignments": [], "calls": []}))

    def run(*args: str) -> Run:
        current = json.loads(state.read_text())
        current["posted"] = []
        state.write_text(json.dumps(current))
        env = {
            **os.environ,
            "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
            "FAKE_AZ_STATE": str(state),
        }
        done = subprocess.run(
            ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
        )
        return Run(done.returncode, done.stdout + done.stderr, json.loads(state.read_text()))

    return run


def roles_by_value() -> dict[str, dict[str, Any]]:
    return {role["value"]: role for role in APPLICATION["appRoles"]}


def test_the_registration_declares_exactly_the_roles_the_function_checks() -> None:
    roles = roles_by_value()
    assert set(roles) == {role.value for role in Role}
    for role in roles.values():
        # People sign in with them; automation with a managed identity may hold them too.
        assert set(role["allowedMemberTypes"]) == {"User", "Application"}
        assert role["isEnabled"] is True
    assert len({role["id"] for role in roles.values()}) == len(roles)


def test_the_script_uses_the_registrations_role_ids() -> None:
    script = SCRIPT.read_text()
    roles = roles_by_value()
    assert f'READ_ROLE_ID="{roles["Sync.Read"]["id"]}"' in script
    assert f'OPERATE_ROLE_ID="{roles["Sync.Operate"]["id"]}"' in script


def test_single_tenant_v2_tokens_and_the_azure_cli_may_sign_in_without_a_prompt() -> None:
    assert APPLICATION["signInAudience"] == "AzureADMyOrg"
    api = PREAUTHORIZED["api"]
    preauthorized = api.pop("preAuthorizedApplications")
    # The second update repeats the first's API section, adding only the pre-authorisations.
    assert api == APPLICATION["api"]
    assert api["requestedAccessTokenVersion"] == 2
    scopes = {scope["id"] for scope in api["oauth2PermissionScopes"]}
    cli = next(p for p in preauthorized if p["appId"] == AZURE_CLI)
    assert set(cli["delegatedPermissionIds"]) <= scopes
    # No credential of its own: App Service Authentication only validates tokens.
    assert "passwordCredentials" not in APPLICATION
    assert "keyCredentials" not in APPLICATION


def test_registers_the_api_and_requires_a_role_to_get_a_token(register: Register) -> None:
    run = register("--name", "coconut-sync-ops-prod", "--grant-operate", OPERATOR)
    assert run.status == 0, run.output
    app = run.state["apps"]["coconut-sync-ops-prod"]
    assert app["identifierUris"] == [f"api://{app['appId']}"]
    assert app["appRoles"] == APPLICATION["appRoles"]
    assert app["api"]["preAuthorizedApplications"]
    [sp] = run.state["sps"].values()
    assert sp["appRoleAssignmentRequired"] is True
    operate = roles_by_value()["Sync.Operate"]["id"]
    assert run.state["posted"] == [[OPERATOR, operate]]
    assert f"OPS_API_CLIENT_ID={app['appId']}" in run.output


def test_running_again_changes_nothing_it_already_did(register: Register) -> None:
    first = register("--grant-read", READER, "--grant-operate", OPERATOR)
    second = register("--grant-read", READER, "--grant-operate", OPERATOR)
    assert second.status == 0, second.output
    assert len(first.state["posted"]) == 2
    assert second.state["posted"] == []
    assert "already granted" in second.output
    assert len(second.state["apps"]) == 1
    assert len(second.state["sps"]) == 1


@pytest.mark.parametrize(
    "args", [("--grant-read", "jane.doe@bank.example"), ("--name", "x y"), ("--bogus",)]
)
def test_refuses_bad_arguments_before_touching_anything(
    register: Register, args: tuple[str, ...]
) -> None:
    run = register(*args)
    assert run.status == 2
    assert run.state["calls"] == []
