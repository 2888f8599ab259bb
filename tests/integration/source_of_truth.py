"""Helpers for `test_onboarding.py`: bank staff who join Coconut's roster when a test says so,
Coconut's own record changed with or without a webhook, and readers for what the service did: the
mailboxes, the worker's runs and their calls (the spans the function app writes), the host's
records and the ops detail."""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.delivery import Backoff, WebhookSender
from local.coconut_emulator.webhooks.payloads import Envelope, StaffRef
from local.graph_emulator.server import GraphEmulator
from local.stack import WEBHOOK_SECRET, LocalStack
from sync.ops import cli
from sync.ops.client import OpsClient
from tests.integration.conftest import deliver, events_by_key, when_free
from tests.integration.realities import answers

Span = dict[str, Any]

SERVICE = payloads.service("S-7", "Opening an account")
VIDEO_SERVICE = payloads.service("S-8", "Mortgage review")
BRANCH = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")
# The call that begins a listing, as the spans name it.
LISTING_CALL = "GET /api/v2/users/{id}/appointments"
# Coconut's listing routes, as the emulator counts its requests.
APPOINTMENTS_ROUTE = "/users/{user_id}/appointments"
UNAVAILABILITIES_ROUTE = "/users/{user_id}/unavailabilities"


# --- staff and Coconut's record -----------------------------------------------------------------


class Banker:
    """A staff member with a Microsoft 365 mailbox (`box`), on Coconut's roster once they
    `join` it (until then the service cannot know them, and Coconut's listings of them answer
    404)."""

    def __init__(self, stack: LocalStack, first_name: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.stack = stack
        self.first_name = first_name
        self.staff_id = f"U-{first_name.lower()}-{tag}"
        self.email = f"{first_name.lower()}.{tag}@bank.example"
        self.ref: StaffRef = payloads.staff_member(self.staff_id, self.email, first_name, "Doe")
        self.box = stack.graph.add_user(
            f"{first_name.lower()}.{tag}@bank.onmicrosoft.com",
            mail=self.email,
            time_zone="Eastern Standard Time",
        ).id
        self.on_roster = False

    def join(self) -> None:
        """On Coconut's roster with calendar sync on (the next timer cycle finds them)."""
        self.stack.coconut.add_user(self.staff_id, self.email, self.first_name, "Doe")
        self.on_roster = True

    def events(self) -> dict[str, list[dict[str, Any]]]:
        """The events the service wrote into the mailbox, by item key."""
        return events_by_key(self.stack.graph, self.box)

    def event_ids(self) -> dict[str, list[str]]:
        """Item key -> the ids of its events (one, when all is well)."""
        return {key: [e["id"] for e in events] for key, events in self.events().items()}


@dataclass
class Bank:
    """The staff a test hires. Afterwards their calendar sync is turned off in Coconut, so that
    later tests do not pay for their timer and repair runs."""

    stack: LocalStack
    staff: list[Banker] = field(default_factory=list)

    def hire(self, first_name: str = "Jane", *, on_roster: bool = True) -> Banker:
        banker = Banker(self.stack, first_name)
        if on_roster:
            banker.join()
        self.staff.append(banker)
        return banker

    def close(self) -> None:
        for banker in self.staff:
            if banker.on_roster:
                self.stack.coconut.set_calendar_sync(banker.staff_id, False)
            else:  # known from webhooks alone, they would be synced for good
                self.stack.coconut.add_user(
                    banker.staff_id, banker.email, banker.first_name, "Doe", calendar_sync=False
                )


def record_model(stack: LocalStack) -> Coconut:
    """Coconut's side bound to the emulator's record: every change is in the listings at once,
    and an envelope that is never delivered is a lost webhook. Ids no other test uses."""
    number = uuid.uuid4().int % 10**8
    return Coconut(
        record=stack.coconut.record,
        first_appointment_number=number,
        first_absence_number=number,
    )


def sender_model() -> Coconut:
    """Coconut's side with a record of its own: its changes reach the emulator's listings only
    through `deliver` (which records what it sends), never through `deliver_unrecorded`."""
    return Coconut(first_appointment_number=uuid.uuid4().int % 10**8)


def book(
    coconut: Coconut,
    staff: list[Banker],
    start: datetime,
    *,
    minutes: int = 60,
    service: payloads.Service = SERVICE,
) -> Envelope:
    return coconut.book(
        staff=[banker.ref for banker in staff],
        start=start,
        end=start + timedelta(minutes=minutes),
        service=service,
        location=BRANCH,
    )


def crowd(coconut: Coconut, banker: Banker, start: datetime, count: int = 100) -> None:
    """`count` cancelled appointments from `start` on, half an hour apart: a first page of
    Coconut's listing (100 items a page) that no calendar shows, before anything later."""
    for number in range(count):
        booked = book(coconut, [banker], start + timedelta(minutes=30 * number), minutes=30)
        coconut.cancel(item_id(booked))


def key(envelope: Mapping[str, Any]) -> str:
    """The service's key of the item an envelope is about."""
    data = envelope["data"]
    kind = "appointment" if data["type"] == "appointments" else "unavailability"
    return f"{kind}:{data['id']}"


def item_id(envelope: Mapping[str, Any]) -> str:
    return str(envelope["data"]["id"])


async def deliver_unrecorded(stack: LocalStack, *envelopes: Mapping[str, Any]) -> list[int | None]:
    """Webhooks Coconut's record does not (yet) show: as a listing read just before the change
    sees it."""
    async with WebhookSender(
        stack.webhook_url, WEBHOOK_SECRET, backoff=Backoff(first_delay=0.2, max_delay=2.0)
    ) as coconut:
        return [(await coconut.deliver(envelope)).status for envelope in envelopes]


def deliver_meanwhile(stack: LocalStack, envelope: Mapping[str, Any]) -> None:
    """Deliver a webhook and wait for the service's answer, from code that runs inside the
    Coconut emulator while it serves a listing (`between_pages`): on a thread of its own, so
    that the emulator's event loop is left alone."""
    answered: list[int | None] = []
    sending = threading.Thread(
        target=lambda: answered.extend(asyncio.run(deliver(stack, envelope))), daemon=True
    )
    sending.start()
    sending.join(timeout=30)
    if answered != [202]:
        raise RuntimeError(f"the webhook was answered {answered}")


def graph_writes(graph: GraphEmulator, box: str) -> int:
    """Every create, update and delete that reached Graph for the mailbox so far."""
    return sum(
        sum(statuses.values())
        for method, statuses in answers(graph, box).items()
        if method in ("POST", "PATCH", "DELETE")
    )


async def command(ops: OpsClient, staff_id: str, name: str) -> dict[str, Any]:
    """An ops command, tried again while a worker holds the staff member (409 leased), as the
    command line does."""
    return await when_free(ops, staff_id, name)


async def shown_on_the_command_line(stack: LocalStack, staff_id: str) -> str:
    """What `python -m sync.ops show <staff_id>` prints (run on a thread: it is synchronous)."""
    assert stack.host is not None, "the stack is not started"
    out = io.StringIO()
    argv = ["--url", stack.host.base_url, "show", staff_id]
    code = await asyncio.to_thread(
        cli.main, argv, Console(file=out, width=200, force_terminal=False)
    )
    assert code == 0, out.getvalue()
    return out.getvalue()


# --- the worker's runs, from the spans ------------------------------------------------------------


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _is_run(span: Span) -> bool:
    """A worker run: the span the queue function opens for one staff request."""
    attributes = span["attributes"]
    return span["kind"] == "INTERNAL" and "trigger" in attributes and "action" in attributes


class Runs:
    """The worker's finished runs and the HTTP calls each made, read back from the spans the
    function app appends to `SYNC_TRACE_FILE` (read on from where the last look stopped)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._spans: list[Span] = []
        self._children: dict[str, list[Span]] = {}

    def _read(self) -> None:
        if not self._path.exists():
            return
        with self._path.open("rb") as spans:
            spans.seek(self._offset)
            data = spans.read()
        complete = data.rfind(b"\n") + 1
        self._offset += complete
        for line in data[:complete].splitlines():
            span: Span = json.loads(line)
            self._spans.append(span)
            if span["parent_span_id"] is not None:
                self._children.setdefault(span["parent_span_id"], []).append(span)

    def of(
        self, staff_id: str, trigger: str | None = None, since: datetime | None = None
    ) -> list[Span]:
        """The staff member's finished runs, oldest first; only those `trigger` asked for, and
        only those that began after `since`."""
        self._read()
        return [
            s
            for s in self._spans
            if _is_run(s)
            and s["attributes"].get("staff_id") == staff_id
            and (trigger is None or s["attributes"].get("trigger") == trigger)
            and (since is None or _moment(s["start"]) > since)
        ]

    def reading(
        self, staff_id: str, trigger: str | None = None, since: datetime | None = None
    ) -> list[Span]:
        """The runs of `of` that read Coconut's listings (a run that found the mailbox busy, or
        a retry already scheduled, makes no call at all)."""
        return [
            run
            for run in self.of(staff_id, trigger, since)
            if any(call["name"] == LISTING_CALL for call in self.calls(run, "coconut"))
        ]

    def calls(self, run: Span, peer: str) -> list[Span]:
        """The HTTP calls one run made to `peer` ("graph" or "coconut")."""
        self._read()
        return [
            s
            for s in self._children.get(run["span_id"], [])
            if s["kind"] == "CLIENT" and s["attributes"].get("peer") == peer
        ]

    def writes(self, run: Span) -> list[str]:
        """The Graph writes one run made ("POST /v1.0/users/{id}/events", ...)."""
        return [s["name"] for s in self.calls(run, "graph") if not s["name"].startswith("GET ")]


# --- the host's records ---------------------------------------------------------------------------

_PAIR = re.compile(r"(\w+)=(\S+)")


def lines(log: Path, message: str) -> Iterator[str]:
    """The dimensions (`key=value ...`) of every record of the host log with this message."""
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        text, _, dimensions = line.partition(" | ")
        if text.endswith(f": {message}"):
            yield dimensions


def records(log: Path, message: str) -> Iterator[dict[str, str]]:
    """The dimensions of every record of the host log with this message (values without
    spaces)."""
    for dimensions in lines(log, message):
        yield dict(_PAIR.findall(dimensions))


def repairs(log: Path, staff_id: str) -> dict[str, int]:
    """What the scheduled repairs of one staff member mended so far, by kind, summed over the
    "lost webhooks repaired" records (the record behind the `lost_webhooks_repaired` metric)."""
    total = {"created": 0, "updated": 0, "removed": 0}
    for found in records(log, "lost webhooks repaired"):
        if found.get("staff_id") == staff_id:
            for kind in total:
                total[kind] += int(found.get(f"repaired_{kind}", "0"))
    return total
