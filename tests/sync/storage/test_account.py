"""The storage account's table clients on Azurite: the SDK's idle policies are left out, the ones
that sign, retry and read answers stay, and the clients still write and read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.core.pipeline.policies import ContentDecodePolicy
from azure.data.tables import UpdateMode
from azure.data.tables._authentication import SharedKeyCredentialPolicy
from azure.data.tables.aio import TableClient
from azure.data.tables.aio._policies_async import AsyncTablesRetryPolicy

from local.azurite import Azurite
from sync.names import STAFF_ITEMS_TABLE
from sync.storage.account import IDLE_TABLE_POLICIES, StorageAccount

pytestmark = pytest.mark.integration


@pytest.fixture
async def account(azurite: Azurite) -> AsyncIterator[StorageAccount]:
    storage = StorageAccount.from_connection_string(azurite.connection_string)
    await storage.ensure_created()
    yield storage
    await storage.close()


def policy_types(table: TableClient) -> list[type]:
    """The policies a request of `table` passes through, unwrapped from the pipeline's runners."""
    runners = table._client._client._pipeline._impl_policies
    return [type(getattr(runner, "_policy", runner)) for runner in runners]


async def test_table_requests_skip_the_idle_policies_and_keep_signing_retrying_and_decoding(
    account: StorageAccount,
) -> None:
    kinds = policy_types(account.table(STAFF_ITEMS_TABLE))

    assert not [kind for kind in kinds if issubclass(kind, IDLE_TABLE_POLICIES)]
    for needed in (SharedKeyCredentialPolicy, AsyncTablesRetryPolicy, ContentDecodePolicy):
        assert needed in kinds


async def test_a_trimmed_table_client_writes_reads_and_refuses_a_stale_etag(
    account: StorageAccount,
) -> None:
    table = account.table(STAFF_ITEMS_TABLE)
    entity = {"PartitionKey": "staff-account-test", "RowKey": "item-1", "Pending": True}
    written = await table.upsert_entity(entity, mode=UpdateMode.MERGE)
    await table.update_entity({**entity, "Pending": False}, mode=UpdateMode.MERGE)

    read = await table.get_entity("staff-account-test", "item-1")

    assert read["Pending"] is False
    with pytest.raises(ResourceModifiedError):
        await table.update_entity(
            {**entity, "Pending": True},
            mode=UpdateMode.MERGE,
            etag=written["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
