"""Both kinds of adapter behind each port, and what a contract test needs around them that the
port does not offer: set-up (users, a person's own events), the service's side controls (throttling,
evicted delta state) and direct reads of where a write landed (the queue's messages).

`BOTH` parametrizes a fixture over the two kinds; the real one is marked `integration` and starts
its server lazily (`request.getfixturevalue`), so a `-m "not integration"` run starts none.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
import pytest
from azure.data.tables import TableServiceClient as SyncTableServiceClient
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy
from azure.storage.queue import QueueServiceClient as SyncQueueServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from local.azurite import Azurite
from local.coconut_emulator.server import CoconutEmulator
from local.graph_emulator.server import GraphEmulator
from sync.coconut.api import CoconutApi
from sync.content_cipher import new_data_key
from sync.graph.calendar import GraphCalendar
from sync.graph.calls import GraphCaller
from sync.graph.client import build_graph_client
from sync.memory.calendar import MemoryCalendar
from sync.memory.coconut import MemoryCoconut
from sync.memory.storage import MemoryQueue
from sync.names import QUEUES, STAFF_SYNC_QUEUE, TABLES
from sync.ports import CoconutBusyTime, CoconutRoster, MailboxCalendar, WorkQueue
from sync.settings import Settings
from sync.storage.account import StorageAccount
from sync.work import StaffSyncRequest, parse_work, unpacked

MEMORY: Final = "memory"
REAL: Final = "real"
# The parameters of every contract fixture: the memory adapter, then the deployed one.
BOTH: Final = (MEMORY, pytest.param(REAL, marks=pytest.mark.integration))


def _diverges(request: pytest.FixtureRequest, kind: str, reason: str) -> None:
    test = request.node
    assert isinstance(test, pytest.Function)
    if kind in test.callspec.params.values():
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def real_adapter_diverges(request: pytest.FixtureRequest, reason: str) -> None:
    """The deployed adapter breaks this contract (`reason`: where, and how): the test is
    expected to fail on it until that is fixed, strictly, so the fix shows."""
    _diverges(request, REAL, reason)


def memory_adapter_diverges(request: pytest.FixtureRequest, reason: str) -> None:
    """The memory adapter departs from this contract on purpose (`reason`: why)."""
    _diverges(request, MEMORY, reason)


def unique(prefix: str) -> str:
    """An id no other test uses: tests share the servers, not their data."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ----- Table and Queue Storage (Azurite) -----------------------------------------------------

_prepared: set[str] = set()


def storage_connection(request: pytest.FixtureRequest) -> str:
    """The session's Azurite, with the service's tables and queues created (once)."""
    azurite: Azurite = request.getfixturevalue("azurite")
    connection = azurite.connection_string
    if connection not in _prepared:
        with SyncTableServiceClient.from_connection_string(connection) as tables:
            for table in TABLES:
                tables.create_table_if_not_exists(table)
        with SyncQueueServiceClient.from_connection_string(connection) as queues:
            existing = {queue.name for queue in queues.list_queues()}
            for queue in QUEUES:
                if queue not in existing:
                    queues.create_queue(queue)
        _prepared.add(connection)
    return connection


@asynccontextmanager
async def storage_account(request: pytest.FixtureRequest) -> AsyncIterator[StorageAccount]:
    """A storage account on Azurite for one test (its clients live on the test's event loop)."""
    connection = storage_connection(request)
    account = StorageAccount(
        TableServiceClient.from_connection_string(connection),
        QueueServiceClient.from_connection_string(connection),
        [],
    )
    try:
        yield account
    finally:
        await account.close()


class QueueSide:
    """A work queue and a consumer of it. `received` takes the requests the consumer can
    receive now (only this test's: its staff ids carry `tag`); `wait` lets time pass."""

    def __init__(self, queue: WorkQueue, tag: str) -> None:
        self.queue = queue
        self.tag = tag

    def staff_id(self) -> str:
        return f"{self.tag}-{uuid.uuid4().hex[:6]}"

    async def received(self) -> list[StaffSyncRequest]:
        raise NotImplementedError

    async def wait(self, seconds: float) -> None:
        raise NotImplementedError


class MemoryQueueSide(QueueSide):
    """`MemoryQueue` keeps each message's delay; the consumer's clock is a counter."""

    def __init__(self) -> None:
        self.memory = MemoryQueue()
        super().__init__(self.memory, unique("U"))
        self._elapsed = 0.0

    async def received(self) -> list[StaffSyncRequest]:
        due = [m for m in self.memory.messages if m.delay_seconds <= self._elapsed]
        self.memory.messages = [m for m in self.memory.messages if m not in due]
        return [request for m in due for request in unpacked(m.work)]

    async def wait(self, seconds: float) -> None:
        self._elapsed += seconds


class AzureQueueSide(QueueSide):
    """Reads the `staff-sync` queue as the Functions host does (base64 message bodies), with
    azure-storage-queue's own client, and deletes what it took."""

    def __init__(self, queue: WorkQueue, connection: str) -> None:
        super().__init__(queue, unique("U"))
        self._reader = QueueClient.from_connection_string(
            connection, STAFF_SYNC_QUEUE, message_decode_policy=BinaryBase64DecodePolicy()
        )

    async def received(self) -> list[StaffSyncRequest]:
        taken: list[StaffSyncRequest] = []
        async for message in self._reader.receive_messages(
            messages_per_page=32, max_messages=32, visibility_timeout=1
        ):
            requests = unpacked(parse_work(bytes(message.content)))
            if all(request.staff_id.startswith(self.tag) for request in requests):
                taken += requests
                await self._reader.delete_message(message)
        return taken

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        await self._reader.close()


# ----- Exchange (Graph emulator) -------------------------------------------------------------


class MailboxesSide:
    """The calendar port, and what people and Graph do to mailboxes around it."""

    def __init__(self, calendar: MailboxCalendar) -> None:
        self.calendar = calendar

    def add_user(self, mail: str, time_zone: str = "UTC") -> str:
        """A Microsoft 365 user with a mailbox; their user id."""
        raise NotImplementedError

    def person_creates(self, user_id: str, body: dict[str, Any]) -> str:
        """An event a person made in Outlook (no Coconut id); its id."""
        raise NotImplementedError

    def person_deletes(self, user_id: str, event_id: str) -> None:
        """A person deletes the event in Outlook (to Deleted Items)."""
        raise NotImplementedError

    def person_moves_away(self, user_id: str, event_id: str) -> None:
        """A person drags the event into another calendar of the mailbox."""
        raise NotImplementedError

    def event_count(self, user_id: str) -> int:
        """How many events the primary calendar holds, read without the port."""
        raise NotImplementedError

    def evict_delta_state(self, user_id: str) -> None:
        """Graph forgets the mailbox's delta state: every link of it is expired."""
        raise NotImplementedError

    def throttle(self, user_id: str, retry_after: float) -> None:
        """The next request for the mailbox answers 429 with `Retry-After`."""
        raise NotImplementedError

    def lose_next_create_answer(self, user_id: str) -> None:
        """The next create in the mailbox happens, and its answer is lost (a 503)."""
        raise NotImplementedError

    def set_reachable(self, user_id: str, reachable: bool) -> None:
        """Graph can serve the mailbox, or not (on-premises, unlicensed, inactive)."""
        raise NotImplementedError

    def fail_item(self, coconut_key: str) -> None:
        """Graph answers 500 to every request about this item's event, until the test ends."""
        raise NotImplementedError

    def single_attempt(self) -> MailboxCalendar:
        """The calendar, without the short retries a request makes before it fails."""
        raise NotImplementedError


class MemoryMailboxes(MailboxesSide):
    def __init__(self) -> None:
        self.memory = MemoryCalendar()
        super().__init__(self.memory)

    def add_user(self, mail: str, time_zone: str = "UTC") -> str:
        return self.memory.add_user(mail, time_zone).id

    def person_creates(self, user_id: str, body: dict[str, Any]) -> str:
        return self.memory.person_create(user_id, body)

    def person_deletes(self, user_id: str, event_id: str) -> None:
        self.memory.person_delete(user_id, event_id)

    def person_moves_away(self, user_id: str, event_id: str) -> None:
        self.memory.person_move(user_id, event_id)

    def event_count(self, user_id: str) -> int:
        return len(self.memory.live_events(user_id))

    def evict_delta_state(self, user_id: str) -> None:
        self.memory.forget_delta_links(user_id)

    def throttle(self, user_id: str, retry_after: float) -> None:
        self.memory.throttle_next(1, retry_after)

    def lose_next_create_answer(self, user_id: str) -> None:
        self.memory.lose_next_answers(1)

    def set_reachable(self, user_id: str, reachable: bool) -> None:
        self.memory.set_reachable(user_id, reachable)

    def fail_item(self, coconut_key: str) -> None:
        self.memory.fail_item(coconut_key)

    def single_attempt(self) -> MailboxCalendar:
        return self.memory


class EmulatedMailboxes(MailboxesSide):
    """`GraphCalendar` through msgraph-sdk (anonymous, as `GRAPH_AUTH=none` builds it) against
    the Graph emulator. Fault rules are the emulator's: cleared by `close`."""

    def __init__(self, graph: GraphEmulator) -> None:
        settings = Settings.model_validate(
            {
                "GRAPH_AUTH": "none",
                "GRAPH_BASE_URL": graph.base_url,
                "COCONUT_API_BASE_URL": "http://127.0.0.1:9/api/v2",
                "COCONUT_API_KEY": "contract-key",
                "COCONUT_WEBHOOK_SECRET": "contract-secret",
                "SYNC_DATA_KEY": new_data_key(),
            }
        )
        self._client = build_graph_client(settings)
        super().__init__(GraphCalendar(self._client, GraphCaller()))
        self.graph = graph
        self._faults: list[str] = []

    def add_user(self, mail: str, time_zone: str = "UTC") -> str:
        principal = f"{uuid.uuid4().hex[:12]}@tenant.onmicrosoft.com"
        return self.graph.add_user(principal, mail, time_zone=time_zone).id

    def person_creates(self, user_id: str, body: dict[str, Any]) -> str:
        return self.graph.create_event_as_person(user_id, body).id

    def person_deletes(self, user_id: str, event_id: str) -> None:
        self.graph.delete_event_as_person(user_id, event_id)

    def person_moves_away(self, user_id: str, event_id: str) -> None:
        self.graph.add_calendar(user_id, "Personal")
        self.graph.move_event_as_person(user_id, event_id, "Personal")

    def event_count(self, user_id: str) -> int:
        return len(self.graph.events(user_id))

    def evict_delta_state(self, user_id: str) -> None:
        self.graph.state.invalidate_delta(user_id)

    def throttle(self, user_id: str, retry_after: float) -> None:
        rule = {"kind": "throttle", "mailbox": user_id, "retryAfter": retry_after, "times": 1}
        self._faults.append(self.graph.add_fault(rule))

    def lose_next_create_answer(self, user_id: str) -> None:
        rule = {"kind": "lostResponse", "methods": ["POST"], "mailbox": user_id, "times": 1}
        self._faults.append(self.graph.add_fault(rule))

    def set_reachable(self, user_id: str, reachable: bool) -> None:
        self.graph.set_mailbox(user_id, enabled=reachable)

    def fail_item(self, coconut_key: str) -> None:
        self._faults.append(self.graph.fail_event(property_value=coconut_key))

    def single_attempt(self) -> MailboxCalendar:
        return GraphCalendar(self._client, GraphCaller(attempts=1))

    async def close(self) -> None:
        for name in self._faults:
            self.graph.clear_fault(name)
        # The service keeps one client for the process and never closes it; a test must. The
        # Graph transport wrapper does not pass `aclose` on, so the pool beneath is closed here.
        http: httpx.AsyncClient = self._client.request_adapter._http_client  # type: ignore[attr-defined]
        beneath = getattr(http._transport, "transport", None)
        if isinstance(beneath, httpx.AsyncBaseTransport):
            await beneath.aclose()
        await http.aclose()


# ----- Coconut (Coconut emulator) ------------------------------------------------------------


class CoconutSide:
    def __init__(self, busy_time: CoconutBusyTime, roster: CoconutRoster) -> None:
        self.busy_time = busy_time
        self.roster = roster

    def add_user(self, user_id: str, email: str, *, calendar_sync: bool = True) -> None:
        """A staff member on Coconut's roster."""
        raise NotImplementedError


class MemoryCoconutSide(CoconutSide):
    def __init__(self) -> None:
        self.memory = MemoryCoconut()
        super().__init__(self.memory, self.memory)

    def add_user(self, user_id: str, email: str, *, calendar_sync: bool = True) -> None:
        self.memory.add_user(user_id, email, calendar_sync=calendar_sync)


class EmulatedCoconutSide(CoconutSide):
    """`CoconutApi` against the Coconut emulator."""

    def __init__(self, coconut: CoconutEmulator) -> None:
        self.api = CoconutApi(coconut.base_url, coconut.api_key)
        super().__init__(self.api, self.api)
        self.coconut = coconut

    def add_user(self, user_id: str, email: str, *, calendar_sync: bool = True) -> None:
        self.coconut.add_user(user_id, email, "Staff", user_id, calendar_sync=calendar_sync)

    async def close(self) -> None:
        await self.api.aclose()
