"""`transactionId`: which event a client's id is bound to, and whether a repeat is the same POST.

Graph documents only that a repeated POST with the same `transactionId` does not create a second
event. Real tenants also refuse a repeat whose body describes a different event (400
`ErrorDuplicateTransactionId`, alcionai/corso#2490). "The same body" is read here as the same
meaningful content: every property the client wrote, compared after normalising what a retry may
legitimately spell differently:

- key order, `@odata.*` annotations, `transactionId` itself and properties sent as null;
- `start`/`end` compare as the instant they stand for plus the zone name (case-insensitive), so
  "09:00:00" and "09:00:00.0000000" are the same time;
- extended properties compare as a set, their ids case-insensitively as Graph matches them;
  everything else (subject, body content, location, …) compares exactly.

The fingerprint is taken from the body of the POST that created the event, so a retry matches
even after someone edited the event since.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.graph_emulator.errors import GraphError
from local.graph_emulator.model import StoredEvent
from local.graph_emulator.odata import normalize_property_id
from local.graph_emulator.timezones import format_instant, parse_date_time_time_zone


def fingerprint(body: Mapping[str, Any]) -> str:
    return json.dumps(_normalise(body), sort_keys=True, separators=(",", ":"), default=str)


def _normalise(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key.startswith("@") or "@odata." in key or key == "transactionId" or value is None:
            continue
        if key in ("start", "end") and isinstance(value, Mapping):
            out[key] = _moment(value, key)
        elif key in ("singleValueExtendedProperties", "multiValueExtendedProperties"):
            out[key] = _properties(value)
        else:
            out[key] = _drop_nulls(value)
    return out


def _moment(value: Mapping[str, Any], field: str) -> Any:
    try:
        instant, zone = parse_date_time_time_zone(value, field)
    except GraphError:
        return _drop_nulls(value)  # a body Graph refuses anyway; compare it as written
    return [format_instant(instant), zone.lower()]


def _properties(value: Any) -> Any:
    if not isinstance(value, list):
        return _drop_nulls(value)
    pairs = [
        (normalize_property_id(str(item.get("id"))), _drop_nulls(item.get("value")))
        for item in value
        if isinstance(item, Mapping)
    ]
    return sorted(pairs, key=lambda pair: pair[0])


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _drop_nulls(v) for k, v in value.items() if v is not None and not k.startswith("@")
        }
    if isinstance(value, list):
        return [_drop_nulls(item) for item in value]
    return value


@dataclass
class Binding:
    """The event a transactionId created (its latest state, even once purged) and the
    fingerprint of the POST that created it."""

    event: StoredEvent
    fingerprint: str


class TransactionLedger:
    def __init__(self) -> None:
        self._bindings: dict[str, Binding] = {}

    def find(self, transaction_id: str) -> Binding | None:
        return self._bindings.get(transaction_id)

    def bind(self, transaction_id: str, event: StoredEvent, body_fingerprint: str) -> None:
        self._bindings[transaction_id] = Binding(event, body_fingerprint)
