"""The storage account's lean clients on Azurite: the table SDK's idle policies are left out and
the ones that sign, retry and read answers stay; request ids are random UUIDs; entity bodies of
plain values skip the generated serializer; and the clients still write, read and refuse a stale
ETag, with every property type read back as written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import ContentDecodePolicy, RequestIdPolicy
from azure.core.rest import HttpRequest
from azure.data.tables import EdmType, EntityProperty, UpdateMode
from azure.data.tables._authentication import SharedKeyCredentialPolicy
from azure.data.tables.aio import TableClient
from azure.data.tables.aio._policies_async import AsyncTablesRetryPolicy

from local.azurite import Azurite
from sync.names import STAFF_ITEMS_TABLE
from sync.storage.account import StorageAccount
from sync.storage.lean_clients import (
    IDLE_TABLE_POLICIES,
    PlainAnswers,
    RandomRequestIdPolicy,
    random_request_id,
)

pytestmark = pytest.mark.integration

PARTITION = "staff-lean-clients-test"


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


class EchoedRequestId:
    """A response hook keeping the `x-ms-client-request-id` the service echoed."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        self.ids.append(response.http_response.headers["x-ms-client-request-id"])


def is_random_uuid(value: str) -> bool:
    return uuid.UUID(value).version == 4


async def test_table_requests_skip_the_idle_policies_and_keep_signing_retrying_and_decoding(
    account: StorageAccount,
) -> None:
    kinds = policy_types(account.table(STAFF_ITEMS_TABLE))

    assert not [kind for kind in kinds if issubclass(kind, IDLE_TABLE_POLICIES)]
    assert RequestIdPolicy not in kinds
    for needed in (
        SharedKeyCredentialPolicy,
        AsyncTablesRetryPolicy,
        ContentDecodePolicy,
        RandomRequestIdPolicy,
    ):
        assert needed in kinds


async def test_a_lean_table_client_writes_reads_and_refuses_a_stale_etag(
    account: StorageAccount,
) -> None:
    table = account.table(STAFF_ITEMS_TABLE)
    entity = {"PartitionKey": PARTITION, "RowKey": "item-1", "Pending": True}
    written = await table.upsert_entity(entity, mode=UpdateMode.MERGE)
    await table.update_entity({**entity, "Pending": False}, mode=UpdateMode.MERGE)

    read = await table.get_entity(PARTITION, "item-1")

    assert read["Pending"] is False
    with pytest.raises(ResourceModifiedError):
        await table.update_entity(
            {**entity, "Pending": True},
            mode=UpdateMode.MERGE,
            etag=written["etag"],
            match_condition=MatchConditions.IfNotModified,
        )


async def test_every_property_type_reads_back_as_written(account: StorageAccount) -> None:
    table = account.table(STAFF_ITEMS_TABLE)
    at = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)
    guid = uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833")
    entity = {
        "PartitionKey": PARTITION,
        "RowKey": "item-types",
        "Text": 'Zürich & "quotes" {braces}',
        "Empty": "",
        "Count": 42,
        "Large": EntityProperty(2**40, EdmType.INT64),
        "Ratio": 0.25,
        "Pending": True,
        "At": at,
        "Content": b"\x00\x01sealed\xff",
        "Id": guid,
    }
    await table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    read = await table.get_entity(PARTITION, "item-types")

    assert read["Text"] == entity["Text"]
    assert read["Empty"] == ""
    assert read["Count"] == 42
    assert read["Large"].value == 2**40
    assert read["Ratio"] == 0.25
    assert read["Pending"] is True
    assert read["At"] == at
    assert read["Content"] == entity["Content"]
    assert read["Id"] == guid


async def test_a_plain_entity_body_skips_the_generated_serializer(
    account: StorageAccount,
) -> None:
    table = account.table(STAFF_ITEMS_TABLE)
    serializer = table._client.table._serialize
    installed = serializer.body
    bodies: list[tuple[object, object]] = []

    def spy(data: Any, data_type: str, **kwargs: Any) -> Any:
        written = installed(data, data_type, **kwargs)
        bodies.append((data, written))
        return written

    serializer.body = spy
    await table.upsert_entity(
        {"PartitionKey": PARTITION, "RowKey": "item-2", "Pending": True, "At": datetime.now(UTC)},
        mode=UpdateMode.MERGE,
    )

    # The SDK still hands its entity body to this serializer (else the saving is gone), and
    # the body goes on as it came: nothing walked it.
    assert len(bodies) == 1
    data, written = bodies[0]
    assert written is data
    nested = {"Outer": {"Inner": 1}}
    assert installed(nested, "{object}") is not nested  # anything else is still walked


class Recording:
    """Stands in for a deserializer, noting the targets it is called with."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.targets: list[str] = []

    def __call__(self, target: str, data: Any, content_type: str | None = None) -> Any:
        self.targets.append(target)
        return self.inner(target, data, content_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_point_reads_plain_answer_skips_the_generated_deserializer(
    account: StorageAccount,
) -> None:
    table = account.table(STAFF_ITEMS_TABLE)
    await table.upsert_entity(
        {"PartitionKey": PARTITION, "RowKey": "item-4", "Pending": True}, mode=UpdateMode.MERGE
    )
    operations = table._client.table
    answers = operations._deserialize
    assert isinstance(answers, PlainAnswers)
    general = Recording(answers._general)
    answers._general = general
    asked = Recording(answers)
    operations._deserialize = asked

    read = await table.get_entity(PARTITION, "item-4")

    assert read["Pending"] is True
    # The SDK still asks this deserializer for the entity and the text headers (else the
    # saving is gone); neither reaches the generated one.
    assert {"{object}", "str"} <= set(asked.targets)
    assert not {"{object}", "str"} & set(general.targets)


def test_the_table_request_id_policy_sets_a_random_id_unless_the_call_names_one() -> None:
    policy = RandomRequestIdPolicy()
    requests = [
        PipelineRequest(HttpRequest("GET", "http://t/x"), PipelineContext(None)) for _ in "ab"
    ]
    named = PipelineRequest(
        HttpRequest("GET", "http://t/x"), PipelineContext(None, request_id="named-by-call")
    )
    for request in [*requests, named]:
        policy.on_request(request)

    ids = [request.http_request.headers["x-ms-client-request-id"] for request in requests]
    assert all(is_random_uuid(value) for value in ids)
    assert ids[0] != ids[1]
    assert named.http_request.headers["x-ms-client-request-id"] == "named-by-call"


async def test_a_queue_message_sent_with_a_random_request_id_carries_it(
    account: StorageAccount,
) -> None:
    echoed = EchoedRequestId()
    sent = random_request_id()
    queue = account.queue("lean-clients-test")  # its own: the service's queues stay empty
    await queue.create_queue()
    try:
        await queue.send_message(b"{}", client_request_id=sent, raw_response_hook=echoed)
    finally:
        await queue.delete_queue()

    assert echoed.ids == [sent]
    assert is_random_uuid(sent)
