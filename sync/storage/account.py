"""The storage account: table and queue clients, from a connection string or a managed identity."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from sync.errors import StorageUnavailable
from sync.names import QUEUES, TABLES
from sync.settings import Settings
from sync.storage.lean_clients import lean_table_service, with_plain_entities

T = TypeVar("T")

# The environment variables that route HTTP requests through a proxy (aiohttp's, as curl's).
_PROXY_SETTINGS = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)


async def guarded(operation: Callable[[], Awaitable[T]]) -> T:
    """Run a storage call, turning transport failures and 5xx into `StorageUnavailable`."""
    try:
        return await operation()
    except (ServiceRequestError, ServiceResponseError, OSError) as error:
        raise StorageUnavailable(type(error).__name__) from None
    except HttpResponseError as error:
        if error.status_code is not None and error.status_code >= 500:
            raise StorageUnavailable(f"storage answered {error.status_code}") from None
        raise


class StorageAccount:
    """Async clients for the service's tables and queues; one per process."""

    def __init__(
        self, tables: TableServiceClient, queues: QueueServiceClient, closers: list[object]
    ) -> None:
        self._tables = tables
        self._queues = queues
        self._closers = closers

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageAccount:
        if settings.uses_identity_storage:
            credential = _managed_identity(settings.storage_client_id)
            tables = lean_table_service(
                TableServiceClient(
                    endpoint=settings.storage_table_service_uri or "",
                    credential=credential,
                    transport=storage_transport(),
                )
            )
            queues = QueueServiceClient(
                account_url=settings.storage_queue_service_uri or "",
                credential=credential,
                transport=storage_transport(),
            )
            return cls(tables, queues, [credential])
        return cls.from_connection_string(settings.storage_connection)

    @classmethod
    def from_connection_string(cls, connection: str) -> StorageAccount:
        return cls(
            lean_table_service(
                TableServiceClient.from_connection_string(connection, transport=storage_transport())
            ),
            QueueServiceClient.from_connection_string(connection, transport=storage_transport()),
            [],
        )

    def table(self, name: str) -> TableClient:
        return with_plain_entities(self._tables.get_table_client(name))

    def queue(self, name: str) -> QueueClient:
        # The Functions host reads queue messages as base64 (host.json messageEncoding).
        return self._queues.get_queue_client(
            name,
            message_encode_policy=BinaryBase64EncodePolicy(),
            message_decode_policy=BinaryBase64DecodePolicy(),
        )

    async def ensure_created(self) -> None:
        """Create the tables and queues if absent (Bicep creates them in Azure; Azurite starts
        empty)."""
        for table in TABLES:
            with contextlib.suppress(ResourceExistsError):
                await guarded(lambda t=table: self._tables.create_table(t))  # type: ignore[misc]
        for queue in QUEUES:
            with contextlib.suppress(ResourceExistsError):
                await guarded(lambda q=queue: self._queues.create_queue(q))  # type: ignore[misc]

    async def close(self) -> None:
        await self._tables.close()
        await self._queues.close()
        for closer in self._closers:
            close = getattr(closer, "close", None)
            if close is not None:
                await close()


def storage_transport() -> AioHttpTransport:
    """An aiohttp transport that reads the environment's proxy settings only if there are any.
    Trusting the environment, aiohttp reads the proxy variables and ~/.netrc on a worker thread
    for every request: measured at a fifth of the host's CPU time per change in a burst."""
    return AioHttpTransport(use_env_settings=any(os.environ.get(name) for name in _PROXY_SETTINGS))


def _managed_identity(client_id: str | None) -> AsyncTokenCredential:
    from azure.identity.aio import ManagedIdentityCredential

    return (
        ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    )
