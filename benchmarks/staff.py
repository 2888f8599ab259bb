"""The workload's people and bookings, and what the benchmarks read back from the emulators."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.delivery import Backoff, WebhookSender
from local.coconut_emulator.webhooks.payloads import Envelope, StaffRef
from local.graph_emulator.server import GraphEmulator
from local.stack import WEBHOOK_SECRET, LocalStack
from sync.graph.calendar import COCONUT_ID_PROPERTY
from sync.http_transport import PooledTransport

T = TypeVar("T")

SERVICE = payloads.service("S-7", "Opening an account")
BRANCH = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")
_PROPERTY = COCONUT_ID_PROPERTY.lower()


@dataclass(frozen=True)
class StaffMember:
    """A staff member on Coconut's roster with a Microsoft 365 mailbox in the Graph emulator."""

    staff_id: str
    email: str
    mailbox: str

    @property
    def ref(self) -> StaffRef:
        return payloads.staff_member(self.staff_id, self.email, "Staff", self.staff_id[-6:])


def enrol(stack: LocalStack, count: int) -> list[StaffMember]:
    """`count` staff members, each a Coconut user on the roster with a Microsoft 365 mailbox,
    as at a bank. (A staff member Coconut does not know would fail every import of their busy
    time, and each of their passes would read Outlook again.)"""
    tag = uuid.uuid4().hex[:6]
    people = []
    for number in range(count):
        staff_id = f"U-{tag}-{number:05d}"
        email = f"staff.{tag}.{number}@bank.example"
        mailbox = stack.graph.add_user(
            f"staff.{tag}.{number}@bank.onmicrosoft.com",
            mail=email,
            time_zone="Eastern Standard Time",
        ).id
        stack.coconut.add_user(staff_id, email, "Staff", f"{tag}{number}")
        people.append(StaffMember(staff_id, email, mailbox))
    return people


def new_coconut() -> Coconut:
    """Appointment ids no other measurement of the run uses (Azurite is shared)."""
    return Coconut(first_appointment_number=random.randrange(10**8, 10**9) * 1000)


def slot(number: int) -> tuple[datetime, datetime]:
    """A distinct half hour a few weeks ahead, inside the import window."""
    start = (datetime.now(UTC) + timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
    start += timedelta(minutes=30 * number)
    return start, start + timedelta(minutes=30)


def book(coconut: Coconut, person: StaffMember, number: int) -> Envelope:
    start, end = slot(number)
    return coconut.book(staff=[person.ref], start=start, end=end, service=SERVICE, location=BRANCH)


def item_key(envelope: Envelope) -> str:
    data: dict[str, Any] = envelope["data"]  # type: ignore[assignment]
    kind = "appointment" if data["type"] == "appointments" else "unavailability"
    return f"{kind}:{data['id']}"


def sender(stack: LocalStack) -> WebhookSender:
    return WebhookSender(
        stack.webhook_url,
        WEBHOOK_SECRET,
        backoff=Backoff(first_delay=0.2, max_delay=2.0, max_attempts=20),
        timeout=30.0,
        # Coconut sends webhooks about changes to its own record: the record changes too.
        record=stack.coconut.record,
        # Coconut runs elsewhere; here it shares the machine with the stack it loads. httpx's
        # own pool cost this sender 2-4 ms of CPU per webhook in a burst, CPU the stack under
        # test then did not get: aiohttp's pool, as the service's clients use, costs a third.
        transport=PooledTransport(),
    )


def synced_keys(graph: GraphEmulator, mailbox: str) -> dict[str, str]:
    """Coconut item key -> change key of each event the service wrote in a mailbox.

    Reads the emulator's memory directly: cheap enough to poll every few milliseconds.
    """
    found: dict[str, str] = {}
    with graph.state.lock:
        for event in graph.state.calendar(mailbox).stored():
            for prop in event.single_properties.values():
                if prop.id.lower() == _PROPERTY:
                    found[str(prop.value)] = event.change_key
    return found


def graph_requests(graph: GraphEmulator, mailbox: str | None = None) -> dict[str, int]:
    """Requests the emulator answered for one mailbox or all: by method, by method with a 2xx
    answer ("ok POST"), and the 429s ("429")."""
    totals: dict[str, int] = {}
    with graph.state.lock:
        boxes = graph.state.counters.by_mailbox
        chosen = [boxes[mailbox]] if mailbox is not None and mailbox in boxes else []
        if mailbox is None:
            chosen = list(boxes.values())
        for methods in chosen:
            for method, statuses in methods.items():
                for status, count in statuses.items():
                    totals[method] = totals.get(method, 0) + count
                    if status.startswith("2"):
                        totals[f"ok {method}"] = totals.get(f"ok {method}", 0) + count
                    if status == "429":
                        totals["429"] = totals.get("429", 0) + count
    return totals


def total_requests(counts: dict[str, int]) -> int:
    """Every request counted by `graph_requests`, refused ones included."""
    return sum(v for k, v in counts.items() if k.isalpha() and k.isupper())


def difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after.get(key, 0) - before.get(key, 0) for key in after}


def writes(counts: dict[str, int]) -> int:
    """Successful event writes (a refused attempt changed nothing)."""
    return sum(counts.get(f"ok {method}", 0) for method in ("POST", "PATCH", "DELETE"))


async def eventually(condition: Callable[[], T], within: float, interval: float = 0.05) -> T:
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {within:.0f} s")
        await asyncio.sleep(interval)
