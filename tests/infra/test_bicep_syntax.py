"""Every Bicep file in infra/ parses without a syntax error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep import Template, parse, syntax_problems
from tests.infra.conftest import INFRA

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


def test_infra_has_the_expected_templates() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert {
        "main.bicep",
        "app/function-app.bicep",
        "app/rbac.bicep",
        "app/alerts.bicep",
        "app/workbook.bicep",
        "core/identity/user-assigned-identity.bicep",
        "core/storage/storage-account.bicep",
        "core/monitor/monitoring.bicep",
        "core/security/key-vault.bicep",
    } <= names


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses_without_errors(path: Path) -> None:
    assert syntax_problems(parse(path.read_bytes())) == []


def test_syntax_check_reports_a_broken_template() -> None:
    broken = (
        (INFRA / "core/storage/storage-account.bicep")
        .read_text()
        .replace("allowSharedKeyAccess: false", "allowSharedKeyAccess: = false", 1)
    )
    assert syntax_problems(parse(broken.encode())) != []


def test_main_deploys_to_a_resource_group(templates: dict[str, Template]) -> None:
    # One template for both `azd up` and `az deployment group create` (docs/deployment.md).
    assert templates["main.bicep"].target_scope == "resourceGroup"


def test_module_paths_in_main_exist(templates: dict[str, Template]) -> None:
    sources = [m.source for m in templates["main.bicep"].modules]
    assert sources, "main.bicep declares no modules"
    assert [s for s in sources if not (INFRA / s).is_file()] == []
