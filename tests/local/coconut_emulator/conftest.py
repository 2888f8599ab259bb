from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from local.coconut_emulator import CoconutEmulator

API_KEY = "test-key"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[CoconutEmulator]:
    with CoconutEmulator(api_key=API_KEY) as emulator:
        yield emulator


@pytest.fixture
def emulator(running_emulator: CoconutEmulator) -> CoconutEmulator:
    """One server per module, emptied before each test."""
    running_emulator.reset()
    return running_emulator


@pytest.fixture
def api(emulator: CoconutEmulator) -> Iterator[httpx.Client]:
    """A client that follows the contract: base URL, bearer key, Accept header."""
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS, timeout=10.0) as client:
        yield client


@pytest.fixture
def control(emulator: CoconutEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.control_url, timeout=10.0) as client:
        yield client
