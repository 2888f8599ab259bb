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


PARAMETERS = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
HOST = json.loads((REPOSITORY / "host.json").read_text())
# azd's two forms here: an environment value, or a secret generated once and read back.
_ENVIRONMENT_VALUE = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)\}$")
_VAULT_SECRET = re.compile(
    r"^\$\(secretOrRandomPassword \$\{AZURE_KEY_VAULT_NAME\} ([a-z0-9-]+)\)$"
)


def _environment_value(parameter: str) -> str | None:
    match = _ENVIRONMENT_VALUE.match(PARAMETERS[parameter]["value"])
    return match.group(1) if match else None


def _guide_row(parameter: str) -> list[str]:
    """The cells of the guide's Parameters table row for `parameter`."""
    for line in GUIDE.splitlines():
        if line.startswith(f"| `{parameter}` |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"{parameter} has no row in the guide's Parameters table")


def test_azd_parameters_are_parameters_of_main(templates: dict[str, Template]) -> None:
    assert set(PARAMETERS) - set(templates["main.bicep"].params) == set()


def test_every_required_parameter_has_an_entry_so_azd_up_runs_unattended(
    templates: dict[str, Template],
) -> None:
    # `azd up --no-prompt` fails on a required parameter it has no value for.
    required = {n for n, p in templates["main.bicep"].params.items() if p.default is MISSING}
    assert required - set(PARAMETERS) == set()


def test_each_entry_is_an_environment_value_or_a_vault_secret() -> None:
    for name, entry in PARAMETERS.items():
        value = entry["value"]
        assert _ENVIRONMENT_VALUE.match(value) or _VAULT_SECRET.match(value), (name, value)


def test_the_guide_names_the_environment_value_of_every_parameter() -> None:
    for parameter in PARAMETERS:
        azd_column = _guide_row(parameter)[3]
        variable = _environment_value(parameter)
        if variable is not None:
            assert f"`{variable}`" in azd_column, (parameter, azd_column)
        else:
            assert "generated" in azd_column, (parameter, azd_column)


def test_the_guide_shows_azd_up_unattended_with_every_value_it_needs() -> None:
    assert "azd up --no-prompt" in GUIDE
    required_by_azd = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION"}
    required_by_azd |= {"AZURE_RESOURCE_GROUP"}  # resource-group scoped deployment
    required = {
        v
        for n in PARAMETERS
        if (v := _environment_value(n)) is not None and "yes" in _guide_row(n)[1]
    }
    assert required == {"AZURE_ENV_NAME", "COCONUT_API_BASE_URL"}
    section = GUIDE[GUIDE.index("### Unattended") :]
    section = section[: section.index("\n## ")]
    for variable in sorted(required_by_azd | required):
        assert variable in section, variable


def test_the_guide_gives_host_jsons_poison_threshold() -> None:
    threshold = HOST["extensions"]["queues"]["maxDequeueCount"]
    documents = {path.name: path.read_text() for path in (REPOSITORY / "docs").glob("*.md")} | {
        "README.md": (REPOSITORY / "README.md").read_text()
    }
    stated = {
        (name, int(n))
        for name, text in documents.items()
        for n in re.findall(r"(?:failed|after) (\d+) (?:times|dequeues|failures)", text)
    }
    assert stated, "the guide says when a message goes to the poison queue"
    assert {n for _, n in stated} == {threshold}, stated


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
