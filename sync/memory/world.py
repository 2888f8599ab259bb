"""A whole service in memory: every adapter sharing one `Faults`, wired to a real worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sync.desired_items import DesiredItemStore
from sync.imports.delta_import import BusyTimeImporter
from sync.lease import StaffLease
from sync.listings import ListingReconciler
from sync.memory.calendar import MemoryCalendar
from sync.memory.coconut import MemoryCoconut
from sync.memory.faults import Faults
from sync.memory.storage import MemoryItemLinks, MemoryItemTable, MemoryQueue, MemoryStaffStore
from sync.ops.disconnect import StaffDisconnect
from sync.retention import ContentRetention
from sync.worker import StaffWorker


@dataclass
class MemoryWorld:
    faults: Faults = field(default_factory=Faults)
    horizon_days: int = 180
    lease_seconds: float = 60.0
    retention_days: int = 30

    def __post_init__(self) -> None:
        self.calendar = MemoryCalendar(self.faults)
        self.coconut = MemoryCoconut(self.faults)
        self.table = MemoryItemTable(self.faults)
        self.links = MemoryItemLinks(self.faults)
        self.staff = MemoryStaffStore(self.faults)
        self.queue = MemoryQueue(self.faults)
        self.items = DesiredItemStore(self.table, self.links)
        self.lease = StaffLease(self.staff, timedelta(seconds=self.lease_seconds))
        self.retention = ContentRetention(
            self.table, self.links, self.staff, timedelta(days=self.retention_days)
        )

    def advance(self, seconds: float) -> None:
        """Let time pass for every deadline the stores hold (leases, throttling, retries)."""
        self.staff.advance(seconds)
        self.links.advance(seconds)

    def worker(self) -> StaffWorker:
        """A worker on these adapters (as `sync.services` wires the real ones)."""
        return StaffWorker(
            staff=self.staff,
            lease=self.lease,
            items=self.items,
            links=self.links,
            calendar=self.calendar,
            queue=self.queue,
            importer=BusyTimeImporter(self.calendar, self.coconut, self.horizon_days),
            disconnect=StaffDisconnect(
                self.calendar, self.links, self.coconut, None, self.retention
            ),
            listings=ListingReconciler(self.coconut, self.items, self.links),
            retention=timedelta(days=self.retention_days),
        )
