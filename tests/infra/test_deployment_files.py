"""azure.yaml, main.parameters.json and docs/deployment.md agree with the templates.

The deployment guide must stay complete for someone who has never seen the project: every
parameter, app setting and output of the deployment is described there.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.infra import policy
from tests.infra.bicep import MISSING, Expr, Template
from tests.infra.conftest import INFRA, REPOSITORY

GUIDE = (REPOSITORY / "docs/deployment.md").read_text()


def _documented(name: str) -> bool:
    return re.search(rf"`{re.escape(name)}`", GUIDE) is not None


def test_azd_parameters_are_parameters_of_main(templates: dict[str, Template]) -> None:
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(mapped) - set(templates["main.bicep"].params) == set()


def test_azd_supplies_every_required_parameter_but_the_prompted_one(
    templates: dict[str, Template],
) -> None:
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    required = {n for n, p in templates["main.bicep"].params.items() if p.default is MISSING}
    # azd prompts for a required parameter it has no value for; the guide says so.
    assert required - set(mapped) == {"coconutApiBaseUrl"}


def test_azd_reads_generated_secrets_back_from_the_vault() -> None:
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for name, secret in (
        ("coconutWebhookSecret", "coconut-webhook-secret"),
        ("graphClientState", "graph-client-state"),
        ("syncDataKey", "sync-data-key"),
    ):
        value = mapped[name]["value"]
        assert value == f"$(secretOrRandomPassword ${{AZURE_KEY_VAULT_NAME}} {secret})"


def test_no_parameter_file_or_output_holds_the_data_key(templates: dict[str, Template]) -> None:
    for file in INFRA.rglob("*.json"):
        for match in re.finditer(r'"value":\s*"([^"]*)"', file.read_text()):
            assert not re.fullmatch(r"[A-Za-z0-9+/]{43}=", match.group(1)), f"a key in {file.name}"
    for where, template in templates.items():
        for name, value in template.outputs.items():
            text = value.text if isinstance(value, Expr) else str(value)
            assert "datakey" not in text.lower(), f"{where}: output {name}"


def test_azure_yaml_deploys_the_python_function_app_with_main_bicep() -> None:
    lines = {
        line.strip()
        for line in (REPOSITORY / "azure.yaml").read_text().splitlines()
        if not line.lstrip().startswith("#")
    }
    assert {"path: infra", "module: main", "language: python", "host: function"} <= lines
    assert "api:" in lines  # the service name the function app is tagged with


@pytest.mark.parametrize("kind", ["parameters", "outputs", "app settings"])
def test_guide_describes_every_item(templates: dict[str, Template], kind: str) -> None:
    main = templates["main.bicep"]
    names = {
        "parameters": set(main.params),
        "outputs": set(main.outputs),
        "app settings": set(policy.APP_SETTINGS),
    }[kind]
    assert {n for n in names if not _documented(n)} == set()


def test_guide_covers_both_deployment_paths_and_what_coconut_needs() -> None:
    for command in (
        "azd up",
        "az deployment group create",
        "func azure functionapp publish",
        "grant-graph-permissions.sh",
        "Set-StaffMailboxScope.ps1",
        "x-functions-key",
        "coconut-webhook-secret",
        "COCONUT_WEBHOOK_URL",
    ):
        assert command in GUIDE
