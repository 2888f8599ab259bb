"""The process-wide objects the functions share: storage clients, the Graph client, the workers.

Built once per process on first use (the Functions worker keeps the process between
invocations), as msgraph-sdk asks: one GraphServiceClient and one credential per process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sync.coconut.api import CoconutApi
from sync.graph.calls import GraphCaller
from sync.graph.client import build_graph_client
from sync.graph.mailboxes import StaffMailboxes
from sync.imports.reconcile import BusyTimeImporter
from sync.notifications.subscriptions import MailboxSubscriptions
from sync.ops.disconnect import StaffDisconnect
from sync.settings import Settings
from sync.staff_sync import StaffSync
from sync.storage.account import StorageAccount
from sync.storage.desired_items import DesiredItemStore
from sync.storage.staff_items import StaffItemStore
from sync.storage.staff_records import StaffRecords
from sync.storage.work_queue import WorkQueue


@dataclass(frozen=True)
class Services:
    settings: Settings
    account: StorageAccount
    items: DesiredItemStore
    staff_items: StaffItemStore
    records: StaffRecords
    queue: WorkQueue
    graph: GraphCaller
    mailboxes: StaffMailboxes
    staff_sync: StaffSync
    coconut: CoconutApi

    @classmethod
    def build(cls, settings: Settings) -> Services:
        account = StorageAccount.from_settings(settings)
        staff_items = StaffItemStore(account)
        items = DesiredItemStore(account, staff_items)
        records = StaffRecords(account)
        queue = WorkQueue(account)
        caller = GraphCaller()
        graph = build_graph_client(settings)
        mailboxes = StaffMailboxes(graph, caller)
        subscriptions = None
        if settings.notifications_enabled:
            subscriptions = MailboxSubscriptions(
                graph, caller, settings.public_base_url, settings.client_state
            )
        coconut = CoconutApi(
            settings.coconut_api_base_url, settings.coconut_api_key.get_secret_value()
        )
        return cls(
            settings=settings,
            account=account,
            items=items,
            staff_items=staff_items,
            records=records,
            queue=queue,
            graph=caller,
            mailboxes=mailboxes,
            staff_sync=StaffSync(
                records=records,
                items=items,
                staff_items=staff_items,
                mailboxes=mailboxes,
                queue=queue,
                importer=BusyTimeImporter(mailboxes, coconut, settings.sync_horizon_days),
                subscriptions=subscriptions,
                disconnect=StaffDisconnect(mailboxes, staff_items, coconut, subscriptions),
            ),
            coconut=coconut,
        )


_services: Services | None = None
_ready = False
_lock: asyncio.Lock | None = None


async def get_services(settings: Settings) -> Services:
    """The shared services; tables and queues are created on first use (Azurite starts empty)."""
    global _services, _ready, _lock
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if _services is None:
            _services = Services.build(settings)
        if not _ready:
            await _services.account.ensure_created()
            _ready = True
    return _services
