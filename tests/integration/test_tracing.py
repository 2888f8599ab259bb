"""One trace per change on the local stack, read back from the spans the function app writes
(`SYNC_TRACE_FILE`): a booking from the webhook through the queue to the Graph calls, and an
Outlook change from Graph's notification through the queue to the Coconut busy block."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from local.coconut_emulator.webhooks import payloads
from local.stack import LocalStack
from sync.trace_file import read_spans
from tests.integration.conftest import deliver, eventually, synced_events
from tests.integration.test_export import BRANCH, OPENING, new_coconut
from tests.integration.test_import import SOON, Person

pytestmark = pytest.mark.integration

Span = dict[str, Any]


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces") / "spans.jsonl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, trace_file: Path) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("host") / "host.log"
    # An hourly timer: only the webhook and Graph's change notifications cause runs here.
    with LocalStack(
        timer_schedule="0 0 * * * *",
        notifications=True,
        host_log=log,
        extra_settings={"SYNC_TRACE_FILE": str(trace_file)},
    ) as running:
        yield running


def _run(spans: list[Span], staff_id: str, trigger: str) -> Span | None:
    """The worker's finished run for `staff_id` asked for by `trigger`, if written yet."""
    return next(
        (
            s
            for s in spans
            if s["name"] == "staff_worker"
            and s["attributes"].get("staff_id") == staff_id
            and s["attributes"].get("trigger") == trigger
        ),
        None,
    )


def _trace(spans: list[Span], trace_id: str) -> list[Span]:
    return [s for s in spans if s["trace_id"] == trace_id]


def _calls(trace: list[Span], peer: str, under: Span) -> list[Span]:
    return [
        s
        for s in trace
        if s["kind"] == "CLIENT"
        and s["attributes"].get("peer") == peer
        and s["parent_span_id"] == under["span_id"]
    ]


def test_a_booking_is_one_trace_from_the_webhook_to_the_graph_calls(
    stack: LocalStack, trace_file: Path
) -> None:
    person = Person(stack)
    staff = payloads.staff_member(person.staff_id, person.email, "Pat", "Lee")
    booking = new_coconut().book(
        staff=[staff], start=SOON, end=SOON + timedelta(hours=1), service=OPENING, location=BRANCH
    )
    asyncio.run(deliver(stack, booking))
    asyncio.run(eventually(lambda: synced_events(stack.graph, person.mailbox)))
    run = asyncio.run(eventually(lambda: _run(read_spans(trace_file), person.staff_id, "webhook")))

    trace = _trace(read_spans(trace_file), run["trace_id"])
    [webhook] = [s for s in trace if s["name"] == "coconut_webhook"]
    assert run["parent_span_id"] == webhook["span_id"]
    graph = _calls(trace, "graph", under=run)
    created = [s for s in graph if s["name"] == "POST /v1.0/users/{id}/events"]
    assert len(created) == 1, [s["name"] for s in graph]
    for call in graph:
        assert call["attributes"]["graph.client_request_id"]
        assert call["attributes"]["graph.request_id"]
        assert call["attributes"]["staff_id"] == person.staff_id
    # The host's invocation of the queue function is another trace, linked.
    assert [link["link_role"] for link in run["links"]] == ["host_invocation"]
    assert person.email not in trace_file.read_text()


def test_an_outlook_change_is_one_trace_from_the_notification_to_the_busy_block(
    stack: LocalStack, trace_file: Path
) -> None:
    person = Person(stack)
    staff = payloads.staff_member(person.staff_id, person.email, "Pat", "Lee")
    # A first sync (from a booking) subscribes to the mailbox's changes.
    booking = new_coconut().book(
        staff=[staff], start=SOON, end=SOON + timedelta(hours=1), service=OPENING, location=BRANCH
    )
    asyncio.run(deliver(stack, booking))
    asyncio.run(eventually(lambda: _run(read_spans(trace_file), person.staff_id, "webhook")))

    person.add("Doctor", SOON + timedelta(days=1))
    asyncio.run(eventually(lambda: len(person.busy()) == 1, within=15))

    def notified_run_with_busy_block() -> Span | None:
        spans = read_spans(trace_file)
        for run in spans:
            if run["name"] != "staff_worker" or run["attributes"].get("trigger") != "notification":
                continue
            if run["attributes"].get("staff_id") != person.staff_id:
                continue
            trace = _trace(spans, run["trace_id"])
            if any(s["name"].startswith("PUT ") for s in _calls(trace, "coconut", under=run)):
                return run
        return None

    run = asyncio.run(eventually(notified_run_with_busy_block))
    trace = _trace(read_spans(trace_file), run["trace_id"])
    [notification] = [s for s in trace if s["name"] == "graph_notifications"]
    assert run["parent_span_id"] == notification["span_id"]
    assert any("delta" in s["name"] for s in _calls(trace, "graph", under=run))
    [put] = [s for s in _calls(trace, "coconut", under=run) if s["name"].startswith("PUT ")]
    assert put["name"] == "PUT /api/v2/users/{id}/external-events/{id}"
    assert put["attributes"]["http.response.status_code"] in (200, 201)
