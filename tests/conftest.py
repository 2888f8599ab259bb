"""Shared fixtures: one Azurite per test session for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.azurite import Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as running:
        yield running
