"""Graph and Coconut calls as client spans: what they hold, and what they never hold."""

from __future__ import annotations

from typing import cast

import httpx
import pytest
from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter
from azure.monitor.opentelemetry.exporter._generated.exporter.models import RemoteDependencyData
from opentelemetry.sdk.metrics.export import NumberDataPoint
from opentelemetry.trace import StatusCode

from sync.http_tracing import TracedTransport, route, sanitized_url
from sync.telemetry import staff_context
from tests.sync.conftest import Exported


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://graph.microsoft.com/v1.0/users?$filter=mail%20eq%20%27pat%40bank.example%27",
            "https://graph.microsoft.com/v1.0/users?$filter=redacted",
        ),
        (
            "https://graph.microsoft.com/v1.0/users/pat@bank.example/mailboxSettings",
            "https://graph.microsoft.com/v1.0/users/redacted/mailboxSettings",
        ),
        (
            "https://graph.microsoft.com/v1.0/users/pat%40bank.example/events",
            "https://graph.microsoft.com/v1.0/users/redacted/events",
        ),
        (
            "https://graph.microsoft.com/v1.0/users/4f1c/calendarView/delta?$deltatoken=abc",
            "https://graph.microsoft.com/v1.0/users/4f1c/calendarView/delta?$deltatoken=redacted",
        ),
        (
            "http://127.0.0.1:8082/api/v2/users/U-42/external-events?page%5Bnumber%5D=2",
            "http://127.0.0.1:8082/api/v2/users/U-42/external-events?page[number]=redacted",
        ),
    ],
)
def test_urls_keep_ids_and_lose_query_values_and_addresses(url: str, expected: str) -> None:
    assert sanitized_url(httpx.URL(url)) == expected


def test_span_names_group_calls_of_one_kind() -> None:
    assert route("/v1.0/users/4f1c2e3a-0000/events/AAMkAGI2=") == "/v1.0/users/{id}/events/{id}"
    assert route("/v1.0/$batch") == "/v1.0/$batch"
    assert route("/v1.0/users/4f1c/calendarView/delta()") == "/v1.0/users/{id}/calendarView/delta()"
    assert route("/api/v2/users/U-42/external-events/graph%3AAAMk") == (
        "/api/v2/users/{id}/external-events/{id}"
    )
    assert route("/v1.0/users/pat@bank.example") == "/v1.0/users/{id}"


async def _send(transport: TracedTransport, url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.get(url, headers=headers)


async def test_a_graph_call_records_both_request_ids(exported: Exported) -> None:
    sent: list[httpx.Request] = []

    def graph(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, headers={"request-id": "r-1"})

    await _send(TracedTransport(httpx.MockTransport(graph), "graph"), "https://g.test/v1.0/me")
    await _send(
        TracedTransport(httpx.MockTransport(graph), "graph"),
        "https://g.test/v1.0/me",
        **{"client-request-id": "mine"},
    )
    first, second = exported.spans.get_finished_spans()
    # Set when the SDK did not, and sent: Graph echoes it, support can search for it.
    assert first.attributes is not None
    assert first.attributes["graph.client_request_id"] == sent[0].headers["client-request-id"]
    assert first.attributes["graph.request_id"] == "r-1"
    assert second.attributes is not None
    assert second.attributes["graph.client_request_id"] == "mine"


async def test_throttling_and_errors_show_on_the_span_and_the_counter(exported: Exported) -> None:
    answers = iter([429, 503, 404])
    transport = TracedTransport(
        httpx.MockTransport(lambda _: httpx.Response(next(answers))), "graph"
    )
    for _ in range(3):
        await _send(transport, "https://g.test/v1.0/users/1/events/2")
    spans = exported.spans.get_finished_spans()
    assert [s.attributes["http.response.status_code"] for s in spans if s.attributes] == [
        429,
        503,
        404,
    ]
    assert {s.status.status_code for s in spans} == {StatusCode.ERROR}
    data = exported.metrics.get_metrics_data()
    assert data is not None
    [throttled] = [m for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics]
    assert throttled.name == "graph_throttled"
    points = throttled.data.data_points
    assert all(isinstance(p, NumberDataPoint) for p in points)
    assert sorted(
        (dict(p.attributes or {})["status"], cast(NumberDataPoint, p).value) for p in points
    ) == [
        ("429", 1),
        ("503", 1),
    ]


async def test_a_coconut_call_carries_no_graph_ids_and_no_headers(exported: Exported) -> None:
    transport = TracedTransport(
        httpx.MockTransport(lambda _: httpx.Response(204, headers={"request-id": "x"})), "coconut"
    )
    await _send(
        transport, "http://c.test/api/v2/users/U-1/external-events/e1", Authorization="Bearer k"
    )
    [span] = exported.spans.get_finished_spans()
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.full": "http://c.test/api/v2/users/U-1/external-events/e1",
        "url.scheme": "http",
        "server.address": "c.test",
        "server.port": 80,
        "peer": "coconut",
        "http.response.status_code": 204,
    }


async def test_a_transport_failure_ends_the_span_as_an_error(exported: Exported) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(httpx.ConnectError):
        await _send(TracedTransport(httpx.MockTransport(refuse), "coconut"), "http://c.test/x")
    [span] = exported.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


async def test_what_application_insights_receives_for_a_graph_call(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exporter's own conversion: a dependency of type HTTP on graph.microsoft.com, the
    # redacted URL as its data, the status as its result code, the ids as customDimensions.
    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    exporter = AzureMonitorTraceExporter(
        connection_string="InstrumentationKey=00000000-0000-0000-0000-000000000000",
        disable_offline_storage=True,
    )
    transport = TracedTransport(
        httpx.MockTransport(lambda _: httpx.Response(429, headers={"request-id": "r-1"})), "graph"
    )
    with staff_context("U-42"):
        await _send(
            transport,
            "https://graph.microsoft.com/v1.0/users?$filter=mail%20eq%20%27pat%40bank.example%27",
        )
    [span] = exported.spans.get_finished_spans()
    envelope = exporter._span_to_envelope(span)
    assert envelope.data is not None
    dependency = envelope.data.base_data
    assert isinstance(dependency, RemoteDependencyData)
    assert (dependency.type, dependency.target, dependency.result_code, dependency.success) == (
        "HTTP",
        "graph.microsoft.com",
        "429",
        False,
    )
    assert dependency.data == "https://graph.microsoft.com/v1.0/users?$filter=redacted"
    assert span.attributes is not None
    assert dependency.properties == {
        "peer": "graph",
        "staff_id": "U-42",
        "graph.client_request_id": span.attributes["graph.client_request_id"],
        "graph.request_id": "r-1",
    }
