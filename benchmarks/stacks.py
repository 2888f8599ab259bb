"""The local stack for one measurement, on an Azurite shared by the whole run.

Azurite takes a second to start, so one instance serves every measurement; each measurement gets
fresh emulators and a fresh Functions host, and starts on an empty work queue and empty tables so
nothing left over from an earlier measurement is processed (or counted) in it: an earlier
measurement's staff members would otherwise be in every timer cycle, their delta links pointing
at an emulator that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local.azurite import Azurite
from local.graph_emulator.server import GraphEmulator
from local.graph_emulator.throttling import ThrottleLimits
from local.stack import LocalStack
from sync.names import QUEUES, TABLES
from sync.storage.account import StorageAccount


def storage_account(connection: str) -> StorageAccount:
    """The service's own storage account client for a connection string (Azurite's, or a
    meter's in front of it)."""
    return StorageAccount(
        TableServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
        [],
    )


async def clear_queues(azurite: Azurite) -> None:
    async with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        for name in QUEUES:
            with contextlib.suppress(ResourceNotFoundError):
                await service.get_queue_client(name).clear_messages()


async def clear_tables(azurite: Azurite) -> None:
    """The service's tables, emptied: dropped and made anew."""
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        for name in TABLES:
            await service.delete_table(name)  # no error if it does not exist
    account = storage_account(azurite.connection_string)
    try:
        await account.ensure_created()
    finally:
        await account.close()


async def queued_messages(azurite: Azurite, queue: str) -> int:
    """Messages in a queue, visible or not (Azure's approximate count)."""
    async with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        properties = await service.get_queue_client(queue).get_queue_properties()
        return int(properties.approximate_message_count or 0)


@contextlib.asynccontextmanager
async def running_stack(
    azurite: Azurite,
    *,
    timer_schedule: str = "0 0 * * * *",
    notifications: bool = False,
    storage_connection: str | None = None,
    limits: ThrottleLimits | None = None,
    log_dir: Path | None = None,
    name: str = "stack",
) -> AsyncIterator[LocalStack]:
    """Emulators and a host on `azurite`; the default timer (hourly) never fires in a run.
    With `limits`, the Graph emulator throttles at them and the host is told them, as a bank
    would set the service to Graph's (lower) limit."""
    await clear_queues(azurite)
    await clear_tables(azurite)
    extra = {"AzureWebJobsStorage": storage_connection} if storage_connection else {}
    if limits is not None:
        extra |= {
            "GRAPH_MAILBOX_REQUESTS_PER_WINDOW": str(limits.requests_per_window),
            "GRAPH_MAILBOX_WINDOW_SECONDS": str(limits.window_seconds),
        }
    stack = LocalStack(
        timer_schedule=timer_schedule,
        notifications=notifications,
        extra_settings=extra,
        host_log=(log_dir / f"{name}-host.log") if log_dir else None,
        azurite=azurite,
        graph=GraphEmulator(limits=limits),
    )
    # Not `stack.start()`: that would start the shared Azurite a second time.
    stack.graph.start()
    stack.coconut.start()
    try:
        await asyncio.to_thread(stack.start_host)
        yield stack
    finally:
        if stack.host is not None:
            await asyncio.to_thread(stack.host.stop)
            stack.host = None
        stack.coconut.stop()
        stack.graph.stop()
