"""Input fuzzing of every HTTP endpoint through the real local host (hypothesis, bounded budget).

Malformed JSON, wrong types, missing fields, strings beyond the contract's limits and
unicode-heavy ones, bad and replayed signatures: each answer is a 4xx naming the problem, never a
5xx, and nothing is recorded (no desired state, no queued work) and nothing reaches Graph. Extra
fields are allowed by the contract, so a payload that only gained fields is accepted as it is.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.signing import signed_headers
from local.stack import WEBHOOK_SECRET, LocalStack
from sync.names import ITEMS_TABLE, STAFF_ITEMS_TABLE, STAFF_SYNC_QUEUE
from sync.storage.keys import table_key

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TORONTO = ZoneInfo("America/Toronto")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
# Any character that can travel in UTF-8 (lone surrogates cannot).
UNICODE = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=200)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("fuzz") / "host.log"
    # No timer: only what a request itself causes may happen.
    with LocalStack(timer_schedule="0 0 0 1 1 *", host_log=Path(log)) as running:
        running.graph.add_user("fuzz@bank.onmicrosoft.com", mail="fuzz@bank.example")
        yield running


def appointment(appointment_id: str) -> dict[str, Any]:
    start = datetime(2026, 12, 1, 14, tzinfo=TORONTO)
    resource = payloads.appointment(
        appointment_id,
        revision=1,
        start=start,
        end=start + timedelta(minutes=30),
        service=payloads.service("S-1", "Opening an account"),
        staff=[payloads.staff_member("U-fuzz", "fuzz@bank.example", "Fuzz", "Staff")],
        attendees=[payloads.attendee("C-1", "Sam", "Lee", email="sam@example.com")],
        location=payloads.location("L-1", "Branch", "1 Main St"),
        notes="notes",
    )
    return dict(payloads.envelope("appointment.created", resource))


def signed(body: bytes, delivery_id: str, timestamp: int | None = None) -> dict[str, str]:
    return signed_headers(delivery_id, body, [WEBHOOK_SECRET], timestamp or int(time.time()))


class Probe:
    """Sends to the host and reads back where a delivery would land, on clients kept for the
    module (hundreds of examples each read the tables, the queue and Graph's counters)."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.host is not None
        self.stack = stack
        self.base_url = stack.host.base_url
        connection = stack.azurite.connection_string
        self.http = httpx.Client(timeout=30)
        self.tables = TableServiceClient.from_connection_string(connection)
        self.queue = QueueClient.from_connection_string(connection, STAFF_SYNC_QUEUE)

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(self.stack.webhook_url, content=body, headers=headers)

    def recorded(self, appointment_id: str) -> bool:
        key = table_key(f"appointment:{appointment_id}")
        try:
            self.tables.get_table_client(ITEMS_TABLE).get_entity(key, "state")
        except ResourceNotFoundError:
            return False
        return True

    def stored_rows(self) -> int:
        """Every entity of the desired-state and link tables (0 while they do not exist)."""
        count = 0
        for name in (ITEMS_TABLE, STAFF_ITEMS_TABLE):
            with contextlib.suppress(ResourceNotFoundError):
                count += sum(1 for _ in self.tables.get_table_client(name).list_entities())
        return count

    def queued(self) -> int:
        return self.queue.get_queue_properties().approximate_message_count or 0

    def graph_writes(self) -> int:
        counters = self.http.get(f"{self.stack.graph.control_url}/counters").json()
        return sum(
            count
            for mailbox in counters["mailboxes"].values()
            for method, statuses in mailbox["requests"].items()
            if method in ("POST", "PATCH", "DELETE")
            for count in statuses.values()
        )

    def assert_refused_without_trace(
        self, response: httpx.Response, appointment_id: str | None, writes_before: int
    ) -> None:
        """Refused with a 4xx naming the problem; nothing recorded (the appointment, when the
        body names one, and nothing at all in the service's tables), queued or sent to Graph."""
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"], "the answer names the problem"
        if appointment_id is not None:
            assert not self.recorded(appointment_id)
        assert self.stored_rows() == 0
        assert self.queued() == 0
        assert self.graph_writes() == writes_before

    def close(self) -> None:
        self.http.close()
        self.tables.close()
        self.queue.close()


@pytest.fixture(scope="module")
def probe(stack: LocalStack) -> Iterator[Probe]:
    checks = Probe(stack)
    yield checks
    checks.close()


def new_id() -> str:
    return f"A-fuzz-{uuid.uuid4().hex[:10]}"


@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_are_refused(probe: Probe, body: bytes) -> None:
    before = probe.graph_writes()
    response = probe.post(body, signed(body, "whevt_fuzz"))
    probe.assert_refused_without_trace(response, None, before)


@FUZZ
@given(document=JSON)
def test_arbitrary_json_is_refused(probe: Probe, document: Any) -> None:
    body = json.dumps(document).encode()
    before = probe.graph_writes()
    response = probe.post(body, signed(body, "whevt_fuzz"))
    probe.assert_refused_without_trace(response, None, before)


FIELDS = [
    "id",
    "type",
    "created_at",
    "data",
    "data.id",
    "data.type",
    "data.attributes",
    "data.attributes.revision",
    "data.attributes.start",
    "data.attributes.end",
    "data.attributes.status",
    "data.attributes.service",
    "data.attributes.staff",
    "data.attributes.meeting_method",
    "data.attributes.attendees",
]


def _parent(document: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        node = node[part]
    return node, leaf


@FUZZ
@given(path=st.sampled_from(FIELDS), value=JSON, drop=st.booleans())
def test_missing_or_mistyped_fields_are_refused(
    probe: Probe, path: str, value: Any, drop: bool
) -> None:
    appointment_id = new_id()
    envelope = appointment(appointment_id)
    delivery_id = str(envelope["id"])
    node, leaf = _parent(envelope, path)
    original = node[leaf]
    if drop:
        if leaf == "attendees":
            return  # absent attendees: an appointment without customers, accepted
        del node[leaf]
    else:
        # Skip values that happen to be valid for the field (e.g. the same string type).
        if type(value) is type(original) or (leaf == "id" and isinstance(value, str)):
            return
        if leaf == "attendees" and value in (None, []):
            return  # no attendees: accepted as an appointment without customers
        node[leaf] = value
    body = json.dumps(envelope).encode()
    before = probe.graph_writes()
    response = probe.post(body, signed(body, delivery_id))
    probe.assert_refused_without_trace(response, appointment_id, before)
    assert "sam@example.com" not in response.text, "no personal data in the error"


@FUZZ
@given(text=UNICODE, field=st.sampled_from(["notes", "service", "attendee_notes"]))
def test_strings_beyond_the_limits_are_refused(probe: Probe, text: str, field: str) -> None:
    appointment_id = new_id()
    envelope = appointment(appointment_id)
    attributes = envelope["data"]["attributes"]
    long_text = (text * (40_000 // len(text) + 2))[:40_000]
    if field == "notes":
        attributes["notes"] = long_text  # limit 32,000
    elif field == "service":
        attributes["service"]["name"] = long_text[:10_001]  # limit 10,000
    else:
        attributes["attendees"][0]["notes"] = long_text
    body = json.dumps(envelope).encode()
    before = probe.graph_writes()
    response = probe.post(body, signed(body, envelope["id"]))
    probe.assert_refused_without_trace(response, appointment_id, before)


@FUZZ
@given(
    signature=st.one_of(
        # Header values are visible ASCII on the wire, with no space at either end (HTTP
        # clients refuse to send those at all).
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(
            str.strip
        ),
        st.from_regex(r"v1=[0-9a-f]{64}", fullmatch=True),
        st.from_regex(r"v0=[0-9a-f]{64}", fullmatch=True),
    ),
    skew=st.integers(min_value=-(10**6), max_value=10**6),
)
def test_bad_and_replayed_signatures_are_refused(probe: Probe, signature: str, skew: int) -> None:
    appointment_id = new_id()
    envelope = appointment(appointment_id)
    body = json.dumps(envelope).encode()
    before = probe.graph_writes()
    forged = {**signed(body, envelope["id"]), "X-Coconut-Signature": signature}
    response = probe.post(body, forged)
    assert response.status_code == 401
    probe.assert_refused_without_trace(response, appointment_id, before)
    if abs(skew) > 300:
        # A genuine signature replayed outside the tolerance is refused all the same.
        replayed = signed(body, envelope["id"], int(time.time()) + skew)
        response = probe.post(body, replayed)
        assert response.status_code == 401
        probe.assert_refused_without_trace(response, appointment_id, before)


@FUZZ
@given(document=JSON, staff=st.text(max_size=40))
def test_graph_notification_endpoints_never_fail_and_enqueue_nothing_unauthentic(
    probe: Probe, document: Any, staff: str
) -> None:
    for route in ("graph/notifications", "graph/lifecycle"):
        response = probe.http.post(
            f"{probe.base_url}/api/{route}",
            params={"staff": staff} if staff else {},
            content=json.dumps(document).encode(),
        )
        # Graph gets 202 for anything it could have sent; without our clientState nothing is
        # acted on. Anything else is a 400.
        assert response.status_code in (202, 400)
    assert probe.queued() == 0


@FUZZ
@given(staff=st.text(min_size=1, max_size=60), command=st.text(max_size=20), body=JSON)
def test_ops_endpoints_answer_unknown_staff_and_bad_input_with_4xx(
    probe: Probe, staff: str, command: str, body: Any
) -> None:
    # A well-formed resync request is not bad input: it is tested in test_ops.
    assume(not (isinstance(body, dict) and {"all", "staff_ids", "limit"} & set(body)))
    base = f"{probe.base_url}/api/ops"
    http = probe.http
    answers = [
        http.get(f"{base}/staff/{quote(staff, safe='')}"),
        http.post(f"{base}/staff/{uuid.uuid4().hex}/{quote(command, safe='') or 'x'}"),
        http.post(f"{base}/resync", content=json.dumps(body).encode()),
        http.post(f"{base}/poison/replay", content=json.dumps(body).encode()),
    ]
    for response in answers:
        assert response.status_code < 500, (response.request.url, response.text)
    assert probe.queued() == 0
