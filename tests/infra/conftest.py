"""Fixtures for the infrastructure tests: the repository's infra/ folder, parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep import Template, load_all

REPOSITORY = Path(__file__).resolve().parents[2]
INFRA = REPOSITORY / "infra"


@pytest.fixture(scope="session")
def templates() -> dict[str, Template]:
    return load_all(INFRA)
