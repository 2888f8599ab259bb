"""The process-wide objects the functions share: adapters, the worker, the cycle.

Built once per process on first use (the Functions worker keeps the process between
invocations), as msgraph-sdk asks: one GraphServiceClient and one credential per process. This
is the one place where the ports (`sync.ports`) meet their Azure, Graph and Coconut adapters.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sync.coconut.api import CoconutApi
from sync.cycle import PeriodicCycle
from sync.desired_items import DesiredItemStore
from sync.graph.calendar import GraphCalendar
from sync.graph.calls import GraphCaller
from sync.graph.client import build_graph_client
from sync.imports.delta_import import BusyTimeImporter
from sync.lease import StaffLease
from sync.listings import ListingReconciler
from sync.notifications.subscriptions import GraphSubscriptions
from sync.ops.disconnect import StaffDisconnect
from sync.ops.health import report_health
from sync.ops.poison import PoisonQueue
from sync.ops.status import StatusView
from sync.retention import ContentRetention
from sync.settings import Settings
from sync.storage.account import StorageAccount
from sync.storage.item_links import TableItemLinks
from sync.storage.item_table import TableItemStore
from sync.storage.staff_table import TableStaffStore
from sync.storage.work_queue import StorageWorkQueue
from sync.worker import StaffWorker


@dataclass(frozen=True)
class Services:
    settings: Settings
    account: StorageAccount
    item_table: TableItemStore
    items: DesiredItemStore
    links: TableItemLinks
    staff: TableStaffStore
    queue: StorageWorkQueue
    graph_calls: GraphCaller
    calendar: GraphCalendar
    worker: StaffWorker
    coconut: CoconutApi
    retention: ContentRetention

    @classmethod
    def build(cls, settings: Settings) -> Services:
        account = StorageAccount.from_settings(settings)
        links = TableItemLinks(account)
        item_table = TableItemStore(account, settings.content_cipher)
        items = DesiredItemStore(item_table, links)
        staff = TableStaffStore(account)
        retention = ContentRetention(
            item_table, links, staff, timedelta(days=settings.sync_content_retention_days)
        )
        queue = StorageWorkQueue(account)
        graph_calls = GraphCaller(rate=settings.graph_mailbox_rate)
        graph = build_graph_client(settings)
        calendar = GraphCalendar(graph, graph_calls)
        subscriptions = None
        if settings.notifications_enabled:
            subscriptions = GraphSubscriptions(
                graph, graph_calls, settings.public_base_url, settings.client_state
            )
        coconut = CoconutApi(
            settings.coconut_api_base_url, settings.coconut_api_key.get_secret_value()
        )
        worker = StaffWorker(
            staff=staff,
            lease=StaffLease(staff, timedelta(seconds=settings.sync_lease_seconds)),
            items=items,
            links=links,
            calendar=calendar,
            queue=queue,
            importer=BusyTimeImporter(calendar, coconut, settings.sync_horizon_days),
            retention=timedelta(days=settings.sync_content_retention_days),
            subscriptions=subscriptions,
            disconnect=StaffDisconnect(calendar, links, coconut, subscriptions, retention),
            listings=ListingReconciler(coconut, items, links),
        )
        return cls(
            settings=settings,
            account=account,
            item_table=item_table,
            items=items,
            links=links,
            staff=staff,
            queue=queue,
            graph_calls=graph_calls,
            calendar=calendar,
            worker=worker,
            coconut=coconut,
            retention=retention,
        )

    @property
    def cycle(self) -> PeriodicCycle:
        return PeriodicCycle(self.staff, self.coconut, self.queue)

    async def run_repair(self) -> None:
        """The scheduled repair's timer (`COCONUT_RECONCILE_SCHEDULE`)."""
        await self.cycle.request_repair(self.settings.reconcile_period_seconds)

    async def run_timer(self) -> None:
        """The timer's job: the periodic cycle, the gauges the alerts read, then the content
        retention (`sync.retention`)."""
        await self.cycle.run()
        await report_health(
            StatusView(self.staff, self.links), PoisonQueue(self.account, self.queue)
        )
        await self.retention.run()


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
