"""The templates in infra/ keep the security properties in tests/infra/policy.py."""

from __future__ import annotations

import pytest

from sync import names
from tests.infra import policy
from tests.infra.bicep import Template


@pytest.mark.parametrize("rule", policy.SECURITY_RULES, ids=lambda r: r.__name__)
def test_infra_keeps_security_property(templates: dict[str, Template], rule: policy.Rule) -> None:
    assert rule(templates) == []


def test_infra_creates_exactly_the_queues_and_tables_the_service_uses(
    templates: dict[str, Template],
) -> None:
    assert policy.storage_names_match_the_service(templates, names.QUEUES, names.TABLES) == []


def test_storage_names_check_notices_a_queue_the_service_does_not_use(
    templates: dict[str, Template],
) -> None:
    assert (
        policy.storage_names_match_the_service(
            templates, [*names.QUEUES, "staff-sync-extra"], names.TABLES
        )
        != []
    )


def test_app_settings_are_exactly_the_ones_the_service_reads(
    templates: dict[str, Template],
) -> None:
    settings = policy.app_settings(templates)
    assert settings is not None
    assert set(settings) == policy.APP_SETTINGS


def test_secrets_reach_the_app_only_as_key_vault_references(
    templates: dict[str, Template],
) -> None:
    settings = policy.app_settings(templates) or {}
    referenced = {name for name, value in settings.items() if policy.key_vault_references(value)}
    assert referenced == policy.SECRET_SETTINGS | policy.OPTIONAL_SECRET_SETTINGS
