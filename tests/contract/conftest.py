"""Fixtures giving each contract test the memory adapter and the real one, in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from local.coconut_emulator.server import CoconutEmulator
from local.graph_emulator.server import GraphEmulator
from sync.content_cipher import ContentCipher, DataKey, new_data_key
from sync.memory.storage import MemoryItemLinks, MemoryItemTable, MemoryStaffStore
from sync.ports import ItemLinks, ItemTable, StaffStore
from sync.storage.item_links import TableItemLinks
from sync.storage.item_table import TableItemStore
from sync.storage.staff_table import TableStaffStore
from sync.storage.work_queue import StorageWorkQueue
from tests.contract.adapters import (
    BOTH,
    MEMORY,
    AzureQueueSide,
    CoconutSide,
    EmulatedCoconutSide,
    EmulatedMailboxes,
    MailboxesSide,
    MemoryCoconutSide,
    MemoryMailboxes,
    MemoryQueueSide,
    QueueSide,
    storage_account,
    storage_connection,
)


@pytest.fixture(scope="session")
def graph_emulator() -> Iterator[GraphEmulator]:
    with GraphEmulator() as running:
        yield running


@pytest.fixture(scope="session")
def coconut_emulator() -> Iterator[CoconutEmulator]:
    with CoconutEmulator() as running:
        yield running


@pytest.fixture(params=BOTH)
async def staff_store(request: pytest.FixtureRequest) -> AsyncIterator[StaffStore]:
    if request.param == MEMORY:
        yield MemoryStaffStore()
        return
    async with storage_account(request) as account:
        yield TableStaffStore(account)


@pytest.fixture(params=BOTH)
async def item_table(request: pytest.FixtureRequest) -> AsyncIterator[ItemTable]:
    if request.param == MEMORY:
        yield MemoryItemTable()
        return
    async with storage_account(request) as account:
        yield TableItemStore(account, ContentCipher(DataKey.from_setting(new_data_key())))


@pytest.fixture(params=BOTH)
async def item_links(request: pytest.FixtureRequest) -> AsyncIterator[ItemLinks]:
    if request.param == MEMORY:
        yield MemoryItemLinks()
        return
    async with storage_account(request) as account:
        yield TableItemLinks(account)


@pytest.fixture(params=BOTH)
async def work_queue(request: pytest.FixtureRequest) -> AsyncIterator[QueueSide]:
    if request.param == MEMORY:
        yield MemoryQueueSide()
        return
    async with storage_account(request) as account:
        side = AzureQueueSide(StorageWorkQueue(account), storage_connection(request))
        try:
            yield side
        finally:
            await side.close()


@pytest.fixture(params=BOTH)
async def mailboxes(request: pytest.FixtureRequest) -> AsyncIterator[MailboxesSide]:
    if request.param == MEMORY:
        yield MemoryMailboxes()
        return
    side = EmulatedMailboxes(request.getfixturevalue("graph_emulator"))
    try:
        yield side
    finally:
        await side.close()


@pytest.fixture(params=BOTH)
async def coconut(request: pytest.FixtureRequest) -> AsyncIterator[CoconutSide]:
    if request.param == MEMORY:
        yield MemoryCoconutSide()
        return
    side = EmulatedCoconutSide(request.getfixturevalue("coconut_emulator"))
    try:
        yield side
    finally:
        await side.close()
