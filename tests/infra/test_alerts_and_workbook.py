"""Alert rules and the workbook query what the service actually emits.

The KQL runs against the Application Insights component (classic table names), so every query
must start from one of those tables and name only metrics the service emits. A typo in a metric
name would otherwise give an alert that can never fire.
"""

from __future__ import annotations

import json
import re
from typing import Final

import pytest

from tests.infra.bicep import Expr, Resource, Template
from tests.infra.conftest import INFRA

COMPONENT_TABLES: Final = frozenset(
    {"requests", "traces", "customMetrics", "exceptions", "dependencies"}
)
# Custom metrics the service emits. poison_queue_length is reported by the timer, because Storage
# metrics give no per-queue depth.
METRICS: Final = frozenset(
    {
        "webhook_to_exchange_ms",
        "exchange_to_coconut_ms",
        "graph_throttled",
        "queue_age_ms",
        "staff_by_status",
        "poison_queue_length",
        "lost_webhooks_repaired",
    }
)
TIMER_FUNCTION: Final = "staff_sync_timer"

# `name == 'x'` and `name in ('x', 'y')`, the two ways the queries pick metrics.
_NAME_EQUALS = re.compile(r"\bname\s*==\s*'([^']*)'")
_NAME_IN = re.compile(r"\bname\s+in\s*\(([^)]*)\)")
_QUOTED = re.compile(r"'([^']*)'")


def _alert_rules(templates: dict[str, Template]) -> list[Resource]:
    return templates["app/alerts.bicep"].of_type("Microsoft.Insights/scheduledQueryRules")


def _query(rule: Resource) -> str:
    criteria = rule.get("properties.criteria.allOf")
    assert isinstance(criteria, list)
    assert len(criteria) == 1
    condition = criteria[0]
    assert isinstance(condition, dict)
    query = condition["query"]
    assert isinstance(query, str), "queries are literal KQL"
    return query.strip()


def _workbook_queries() -> list[str]:
    workbook = json.loads((INFRA / "app/workbook.json").read_text())
    return [
        item["content"]["query"]
        for item in workbook["items"]
        if item["type"] == 3 and item["content"].get("version") == "KqlItem/1.0"
    ]


def _metric_names(query: str) -> set[str]:
    if "customMetrics" not in query:
        return set()
    listed = {n for group in _NAME_IN.findall(query) for n in _QUOTED.findall(group)}
    return set(_NAME_EQUALS.findall(query)) | listed


def test_there_is_one_alert_per_operational_risk(templates: dict[str, Template]) -> None:
    queries = {rule.symbol: _query(rule) for rule in _alert_rules(templates)}
    assert set(queries) == {
        "failures",
        "poisonQueue",
        "timerStopped",
        "staffInError",
        "webhookLatency",
        "lostWebhooks",
    }
    assert "success == false" in queries["failures"]
    assert "poison_queue_length" in queries["poisonQueue"]
    assert TIMER_FUNCTION in queries["timerStopped"]
    assert "== 'Error'" in queries["staffInError"]
    assert "webhook_to_exchange_ms" in queries["webhookLatency"]
    assert "lost_webhooks_repaired" in queries["lostWebhooks"]


def test_timer_alert_fires_on_silence(templates: dict[str, Template]) -> None:
    rule = templates["app/alerts.bicep"].resource("timerStopped")
    assert rule is not None
    condition = rule.get("properties.criteria.allOf")
    assert isinstance(condition, list)
    assert isinstance(condition[0], dict)
    assert condition[0]["operator"] == "LessThan"
    assert condition[0]["threshold"] == 1
    assert condition[0]["timeAggregation"] == "Count"


def test_lost_webhook_alert_fires_only_when_repairs_keep_happening(
    templates: dict[str, Template],
) -> None:
    # One lost webhook now and then is what the scheduled repair is for; repairs in every hour
    # of the window are a delivery that is broken (a wrong secret, a blocked endpoint).
    rule = templates["app/alerts.bicep"].resource("lostWebhooks")
    assert rule is not None
    condition = rule.get("properties.criteria.allOf")
    assert isinstance(condition, list)
    assert isinstance(condition[0], dict)
    assert condition[0]["timeAggregation"] == "Total"
    assert condition[0]["operator"] == "GreaterThan"
    assert condition[0]["threshold"] == 0
    periods = condition[0]["failingPeriods"]
    assert isinstance(periods, dict)
    assert periods["numberOfEvaluationPeriods"] == periods["minFailingPeriodsToAlert"]
    hours = periods["numberOfEvaluationPeriods"]
    assert isinstance(hours, Expr)
    assert hours.text == "lostWebhookHours"
    assert rule.get("properties.windowSize") == rule.get("properties.evaluationFrequency") == "PT1H"


def test_alert_rules_are_scoped_to_application_insights(templates: dict[str, Template]) -> None:
    for rule in _alert_rules(templates):
        scopes = rule.get("properties.scopes")
        assert isinstance(scopes, list)
        assert len(scopes) == 1
        assert isinstance(scopes[0], Expr)
        assert scopes[0].text == "applicationInsightsId"


@pytest.mark.parametrize("source", ["alerts", "workbook"])
def test_queries_read_component_tables_and_known_metrics(
    templates: dict[str, Template], source: str
) -> None:
    queries = (
        [_query(r) for r in _alert_rules(templates)] if source == "alerts" else _workbook_queries()
    )
    assert queries
    for query in queries:
        table = query.split()[0]
        assert table in COMPONENT_TABLES, query
        assert _metric_names(query) <= METRICS, query


def test_metric_check_spots_a_misspelt_metric() -> None:
    assert _metric_names("customMetrics\n| where name == 'webhook_to_exchange'") - METRICS


def test_workbook_shows_health_per_staff_and_throttling() -> None:
    queries = "\n".join(_workbook_queries())
    assert "by staff_id" in queries
    assert "graph_throttled" in queries
    assert "staff_by_status" in queries


def _workbook_charts() -> dict[str, str]:
    """Title -> query of every query item of the workbook."""
    workbook = json.loads((INFRA / "app/workbook.json").read_text())
    return {
        item["content"]["title"]: item["content"]["query"]
        for item in workbook["items"]
        if item["type"] == 3 and item["content"].get("version") == "KqlItem/1.0"
    }


def test_throttling_charts_count_every_status_their_title_names() -> None:
    # graph_throttled counts Graph's 429 and 503 answers with a `status` dimension (sync/
    # http_tracing.py); the Graph dependencies carry the same status as their result code.
    charts = _workbook_charts()
    throttling = [(t, q) for t, q in charts.items() if "throttl" in t.lower()]
    assert len(throttling) == 2
    for title, query in throttling:
        named = set(re.findall(r"\b(429|503)\b", title)) or {"429", "503"}
        if "graph_throttled" in query:
            assert "customDimensions.status" in query, title
        else:
            assert query.split()[0] == "dependencies", title
            assert all(f"'{status}'" in query for status in named), title


def test_workbook_is_deployed_from_its_json(templates: dict[str, Template]) -> None:
    (workbook,) = templates["app/workbook.bicep"].of_type("Microsoft.Insights/workbooks")
    data = workbook.get("properties.serializedData")
    assert isinstance(data, Expr)
    assert data.text == "loadTextContent('workbook.json')"
    assert workbook.get("properties.category") == "workbook"
