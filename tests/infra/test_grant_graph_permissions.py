"""infra/scripts/grant-graph-permissions.sh grants what is missing, and only that.

The script runs against a stand-in `az` (first on PATH) that answers like Microsoft Graph for the
few calls the script makes and records every assignment it is asked to create.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import pytest

from tests.infra.conftest import INFRA

SCRIPT: Final = INFRA / "scripts/grant-graph-permissions.sh"
PRINCIPAL: Final = "11111111-2222-3333-4444-555555555555"
GRAPH_SP: Final = "99999999-8888-7777-6666-555555555555"
# Microsoft Graph application permission ids.
ROLE_IDS: Final = {
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "Calendars.ReadWrite": "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
    "MailboxSettings.Read": "40f97065-369a-49f4-947c-6a255697ae91",
}

FAKE_AZ: Final = f'''#!{sys.executable}
"""Stand-in for the Azure CLI: state in $FAKE_AZ_STATE."""
import json, os, re, sys

ROLE_IDS = {ROLE_IDS!r}
GRAPH_SP = {GRAPH_SP!r}
args = sys.argv[1:]
state_path = os.environ["FAKE_AZ_STATE"]
with open(state_path) as f:
    state = json.load(f)

def option(name):
    return args[args.index(name) + 1] if name in args else ""

if args[:3] == ["ad", "sp", "show"]:
    query = option("--query")
    if query == "id":
        print(GRAPH_SP)
    else:
        wanted = re.search(r"value=='([^']+)'", query).group(1)
        print(ROLE_IDS.get(wanted, ""))
elif args[:1] == ["rest"] and option("--method") == "GET":
    assert option("--url").endswith("/servicePrincipals/{PRINCIPAL}/appRoleAssignments")
    assert GRAPH_SP in option("--query")
    print("\\n".join(state["granted"]))
elif args[:1] == ["rest"] and option("--method") == "POST":
    body = json.loads(option("--body"))
    assert body["principalId"] == "{PRINCIPAL}" and body["resourceId"] == GRAPH_SP
    state["granted"].append(body["appRoleId"])
    state["posted"].append(body["appRoleId"])
else:
    sys.exit("fake az: unexpected call " + " ".join(args))
with open(state_path, "w") as f:
    json.dump(state, f)
'''


@dataclass(frozen=True)
class Run:
    status: int
    output: str
    granted: list[str]
    posted: list[str]


class Grant(Protocol):
    def __call__(self, *args: str, already: tuple[str, ...] = ()) -> Run: ...


@pytest.fixture
def grant(tmp_path: Path) -> Grant:
    (tmp_path / "bin").mkdir()
    az = tmp_path / "bin/az"
    az.write_text(FAKE_AZ)
    az.chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"granted": [], "posted": []}))

    def run(*args: str, already: tuple[str, ...] = ()) -> Run:
        current = json.loads(state.read_text())
        current["granted"] += [ROLE_IDS[p] for p in already]
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
        result = json.loads(state.read_text())
        return Run(done.returncode, done.stdout + done.stderr, result["granted"], result["posted"])

    return run


def _names(role_ids: list[str]) -> set[str]:
    return {name for name, role_id in ROLE_IDS.items() if role_id in role_ids}


def test_grants_only_the_directory_permission_by_default(grant: Grant) -> None:
    run = grant("--principal-id", PRINCIPAL)
    assert run.status == 0, run.output
    assert _names(run.posted) == {"User.Read.All"}


def test_running_twice_grants_nothing_the_second_time(grant: Grant) -> None:
    first = grant("--principal-id", PRINCIPAL)
    second = grant("--principal-id", PRINCIPAL)
    assert first.posted
    assert second.posted == []
    assert second.status == 0
    assert "already granted" in second.output


def test_tenant_wide_flag_grants_mailbox_permissions_in_entra(grant: Grant) -> None:
    run = grant("--principal-id", PRINCIPAL, "--tenant-wide-mailbox-access")
    assert run.status == 0, run.output
    assert _names(run.posted) == set(ROLE_IDS)


def test_warns_when_mailbox_access_is_already_tenant_wide(grant: Grant) -> None:
    run = grant("--principal-id", PRINCIPAL, already=("Calendars.ReadWrite",))
    assert run.status == 3
    assert "Calendars.ReadWrite is granted tenant-wide" in run.output
    assert _names(run.posted) == {"User.Read.All"}


def test_refuses_to_run_without_a_principal_id(grant: Grant) -> None:
    run = grant()
    assert run.status == 2
    assert run.posted == []
