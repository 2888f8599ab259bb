"""Customer data goes to Exchange and nowhere else.

A full scenario (book, change, add an attendee, reassign, a staff member's own Outlook event,
a malformed delivery, every ops command) runs with distinctive names, e-mail addresses, phone
numbers, notes and answers. Afterwards none of them may appear in anything the service logged or
stored outside the event itself: the host's log (every record with its dimensions, tracebacks
included), every span the app finished (names and attributes, Graph and Coconut URLs included),
every table entity, the queues (poison included), the status records, Coconut's
external events, the ops API's answers and the error bodies.

The `items` table is left out here: it keeps what each event is made of, encrypted, and
`test_data_at_rest.py` reads it (with every other table and queue) as an operator would.
The probe is shown to be live: every value does reach the Exchange event.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient
from rich.console import Console

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.signing import encode_body, signed_headers
from local.stack import WEBHOOK_SECRET, LocalStack
from sync.names import ITEMS_TABLE, QUEUES
from sync.ops import cli
from sync.ops.client import OpsClient, OpsRefused
from sync.trace_file import read_spans
from tests.integration.conftest import deliver, eventually, when_free
from tests.integration.test_export import BRANCH, OPENING, new_coconut
from tests.integration.test_ops import SOON, Person, row

pytestmark = pytest.mark.integration

ZEPHYRINE = payloads.attendee(
    "C-771",
    "Zephyrine",
    "Quillfeather",
    email="zephyrine.quillfeather@probe-mail.example",
    cell_phone="+1 416 555 0177",
    phone="+1 416 555 0188",
    notes="Allergic to walnuts; prefers Kestrelmoor branch",
    answers=[payloads.answer("Mother's maiden name?", "Wobbleton")],
)
BARNABY = payloads.attendee(
    "C-772",
    "Barnaby",
    "Frostwhistle",
    email="b.frostwhistle@probe-mail.example",
    cell_phone="+1 647 555 0166",
    notes="Brings power of attorney for Ottoline",
)
APPOINTMENT_NOTES = "Discuss the Blorpton estate inheritance"
CHANGED_NOTES = "Bring the Vexhollow trust deed"
OWN_SUBJECT = "Quokkadrome therapy session"
OWN_BODY = "Appointment with Dr Snodgrass-Pemberton"

PERSONAL = (
    "Zephyrine",
    "Quillfeather",
    "zephyrine.quillfeather@probe-mail.example",
    "555 0177",
    "555 0188",
    "Kestrelmoor",
    "walnuts",
    "Wobbleton",
    "Barnaby",
    "Frostwhistle",
    "b.frostwhistle@probe-mail.example",
    "555 0166",
    "Ottoline",
    "Blorpton",
    "Vexhollow",
    "Quokkadrome",
    "Snodgrass",
)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def leaks(haystack: str) -> set[str]:
    """The personal values found in `haystack` (case-insensitive; phone numbers also as
    digits only)."""
    folded = haystack.casefold()
    bare = digits(haystack)
    found = {value for value in PERSONAL if value.casefold() in folded}
    found |= {v for v in PERSONAL if v.startswith("555") and digits(v) in bare}
    return found


def text_of(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        decoded = bytes(value).decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            decoded += base64.b64decode(value, validate=False).decode("utf-8", "replace")
        return decoded
    return str(value)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The shared stack, writing its spans to a file so they are searched too."""
    folder = tmp_path_factory.mktemp("privacy")
    spans = str(folder / "spans.jsonl")
    with LocalStack(
        host_log=folder / "host.log", extra_settings={"SYNC_TRACE_FILE": spans}
    ) as running:
        yield running


async def stored_outside_items(tables: TableServiceClient) -> dict[str, list[str]]:
    """Every entity of every table but `items`, as text, by table."""
    found: dict[str, list[str]] = {}
    async for table in tables.list_tables():
        if table.name == ITEMS_TABLE:
            continue
        client = tables.get_table_client(table.name)
        found[table.name] = [
            " ".join(f"{k}={text_of(v)}" for k, v in entity.items())
            async for entity in client.list_entities()
        ]
    return found


async def queued(queues: QueueServiceClient) -> list[str]:
    messages: list[str] = []
    for name in QUEUES:
        client = queues.get_queue_client(name)
        messages += [text_of(m.content) for m in await client.peek_messages(max_messages=32)]
    return messages


def cli_output(stack: LocalStack, *argv: str) -> str:
    assert stack.host is not None
    out = io.StringIO()
    cli.main(
        ["--url", stack.host.base_url, *argv],
        console=Console(file=out, width=200),
    )
    return out.getvalue()


def report(places: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    return {where: found for where, text in places if (found := leaks(text))}


async def test_personal_data_reaches_exchange_and_nothing_else(
    stack: LocalStack, clients: tuple[TableServiceClient, QueueServiceClient]
) -> None:
    assert stack.host is not None
    assert stack.host_log is not None
    tables, queues = clients
    ops = OpsClient(stack.host.base_url)
    kim, lee = Person(stack), Person(stack)
    own_day = (SOON + timedelta(days=2)).strftime("%Y-%m-%d")
    kim.stack.graph.create_event_as_person(
        kim.mailbox,
        {
            "subject": OWN_SUBJECT,
            "body": {"contentType": "text", "content": OWN_BODY},
            "start": {"dateTime": f"{own_day}T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{own_day}T10:00:00", "timeZone": "UTC"},
            "showAs": "busy",
        },
    )
    coconut = new_coconut()
    booked = coconut.book(
        staff=[kim.ref],
        start=SOON,
        end=SOON + timedelta(hours=1),
        service=OPENING,
        location=BRANCH,
        attendees=[ZEPHYRINE],
        notes=APPOINTMENT_NOTES,
    )
    appointment = booked["data"]["id"]
    await deliver(stack, booked)
    await eventually(lambda: len(kim.service_events()) == 1)
    await deliver(
        stack,
        coconut.add_attendee(appointment, BARNABY),
        coconut.change_notes(appointment, CHANGED_NOTES),
    )
    [event] = await eventually(
        lambda: [e for e in kim.service_events() if "Vexhollow" in e["body"]["content"]]
    )
    exchange = json.dumps(event)
    missing = set(PERSONAL) - leaks(exchange) - {"555 0188", "Blorpton", "Quokkadrome", "Snodgrass"}
    assert not missing, f"the probe values must reach the event itself: {missing}"
    assert "555 0188" not in exchange, "only the mobile number is written"

    reassigned = coconut.reassign(appointment, [lee.ref])
    await deliver(stack, reassigned)
    await eventually(lambda: len(lee.service_events()) == 1 and not kim.service_events())

    # A delivery that breaks the contract in a field holding a name: refused without echoing it.
    malformed: dict[str, Any] = dict(
        coconut.book(staff=[kim.ref], start=SOON, end=SOON + timedelta(hours=1), service=OPENING)
    )
    malformed["data"]["attributes"]["attendees"] = [
        {**ZEPHYRINE, "first_name": ["Zephyrine"], "email": 7}
    ]
    body = encode_body(malformed)
    headers = signed_headers(str(malformed["id"]), body, [WEBHOOK_SECRET], int(time.time()))
    async with httpx.AsyncClient() as http:
        refused = await http.post(stack.webhook_url, content=body, headers=headers)
    assert refused.status_code == 400
    error_bodies = [refused.text]

    # Every ops command, and their answers and refusals.
    resync = ops.resync()
    assert kim.staff_id in resync["staff_ids"]
    await eventually(lambda: len(kim.service_blocks()) == 1)  # the own event, as "Busy"
    answers = [json.dumps(resync), json.dumps(ops.staff()), json.dumps(ops.detail(kim.staff_id))]
    answers.append(json.dumps(await when_free(ops, lee.staff_id, "disconnect")))
    await eventually(lambda: ops.detail(lee.staff_id)["status"] == "Disconnected")
    answers.append(json.dumps(await when_free(ops, lee.staff_id, "reconnect")))
    # The disconnect purged Lee's content; Coconut's listing brings it back on a reconnect.
    await deliver(stack, reassigned)
    await eventually(lambda: row(ops, lee.staff_id).get("status") == "Syncing")
    answers.append(json.dumps(await when_free(ops, kim.staff_id, "reinitialise")))
    answers += [json.dumps(ops.poison()), json.dumps(ops.replay())]
    refusals: list[Callable[[], object]] = [
        lambda: ops.detail(f"U-{uuid.uuid4().hex[:6]}"),
        lambda: ops.staff("Zephyrine"),
        lambda: ops._call("POST", "/resync", json={"Zephyrine": True}),
    ]
    for refusal in refusals:
        with pytest.raises(OpsRefused) as error:
            refusal()
        error_bodies.append(json.dumps(error.value.document))
    answers += [cli_output(stack, "status"), cli_output(stack, "show", lee.staff_id)]
    await eventually(lambda: len(lee.service_events()) == 1)
    ops.close()

    blocks = kim.busy()
    assert {b["attributes"]["title"] for b in blocks.values()} == {"Busy"}
    spans = json.dumps(read_spans(Path(stack.extra_settings["SYNC_TRACE_FILE"])))
    places = [
        ("host log", stack.host_log.read_text(encoding="utf-8", errors="replace")),
        ("spans", spans),
        ("coconut external events", json.dumps([kim.busy(), lee.busy()])),
        *((f"ops answer {n}", text) for n, text in enumerate(answers)),
        *((f"error body {n}", text) for n, text in enumerate(error_bodies)),
        *((f"queue message {n}", text) for n, text in enumerate(await queued(queues))),
    ]
    stored = await stored_outside_items(tables)
    assert {"staff", "staffitems"} <= set(stored), "status records and links were read"
    places += [(f"table {name}", "\n".join(rows)) for name, rows in stored.items()]
    assert "staff_sync" in places[0][1], "the log holds the operation records"
    assert '"peer": "graph"' in spans, "the spans hold the Graph calls"
    assert report(places) == {}
