"""The local stack for integration tests, and small helpers to drive it and read outcomes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local.coconut_emulator.webhooks.delivery import Backoff, WebhookSender
from local.graph_emulator.server import GraphEmulator
from local.stack import WEBHOOK_SECRET, LocalStack
from sync.graph.calendar import COCONUT_ID_PROPERTY
from sync.ops.client import OpsClient, OpsRefused

T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("host") / "host.log"
    with LocalStack(host_log=log) as running:
        yield running


def sender(stack: LocalStack) -> WebhookSender:
    """Coconut sending webhooks about changes to its own record: the emulator's record (which
    the service lists) changes first, as in Coconut."""
    return WebhookSender(
        stack.webhook_url,
        WEBHOOK_SECRET,
        backoff=Backoff(first_delay=0.2, max_delay=2.0, max_attempts=20),
        record=stack.coconut.record,
    )


async def deliver(stack: LocalStack, *envelopes: Mapping[str, Any]) -> list[int | None]:
    async with sender(stack) as coconut:
        return [(await coconut.deliver(envelope)).status for envelope in envelopes]


def coconut_key(event: dict[str, Any]) -> str | None:
    for prop in event.get("singleValueExtendedProperties") or []:
        if prop.get("id", "").lower() == COCONUT_ID_PROPERTY.lower():
            return str(prop.get("value"))
    return None


def synced_events(graph: GraphEmulator, user: str) -> list[dict[str, Any]]:
    """The events the service wrote into a mailbox (tagged with the Coconut id)."""
    return [e for e in graph.events(user) if coconut_key(e) is not None]


def events_by_key(graph: GraphEmulator, user: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in synced_events(graph, user):
        found.setdefault(str(coconut_key(event)), []).append(event)
    return found


async def landed(graph: GraphEmulator, user: str, key: str) -> dict[str, list[dict[str, Any]]]:
    """Wait until an event for item `key` is in the mailbox; then every synced event by key."""

    def found() -> dict[str, list[dict[str, Any]]] | None:
        events = events_by_key(graph, user)
        return events if key in events else None

    return await eventually(found)


async def eventually(condition: Callable[[], T | Literal[False] | None], within: float = 20.0) -> T:
    """Wait until `condition()` is truthy (the sync is asynchronous); its last value (so
    `lambda: ready and value` gives the value)."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s; last value: {value!r}")
        await asyncio.sleep(0.1)


async def when_free(ops: OpsClient, staff_id: str, command: str) -> dict[str, Any]:
    """The command, retried while a worker holds the staff member (409 leased), as an
    administrator would."""
    for _ in range(40):
        try:
            return ops.command(staff_id, command)
        except OpsRefused as refused:
            if refused.code != "leased":
                raise
            await asyncio.sleep(0.5)
    return ops.command(staff_id, command)


# Fixtures over the `stack` each test module starts for itself.


@pytest.fixture
def ops(stack: LocalStack) -> Iterator[OpsClient]:
    assert stack.host is not None
    with OpsClient(stack.host.base_url) as client:
        yield client


@pytest.fixture
async def clients(
    stack: LocalStack,
) -> AsyncIterator[tuple[TableServiceClient, QueueServiceClient]]:
    connection = stack.azurite.connection_string
    async with (
        TableServiceClient.from_connection_string(connection) as tables,
        QueueServiceClient.from_connection_string(connection) as queues,
    ):
        yield tables, queues
