"""Injected failures, drawn from a seeded RNG: 429s, 5xx answers, dropped connections, added
latency, lost responses, expired tokens, and events that fail every request about them.

A rule applies to requests matching its `methods`, `pathPattern` (a regex searched in the path
below /v1.0) and `mailbox` (user id or UPN), with probability `rate`; `times` limits how often it
fires (a token that expires once, a response lost once), otherwise it keeps firing until cleared.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from local.graph_emulator.errors import (
    GraphError,
    internal_server_error,
    invalid_token,
    throttled,
)
from local.graph_emulator.model import User

FAULT_KINDS = (
    "throttle",
    "unavailable",
    "latency",
    "lostResponse",
    "dropConnection",
    "invalidToken",
    "failingEvent",
)
SERVER_ERROR_STATUSES = (500, 502, 503, 504)
# Refused before the request is applied; the first refusing rule that fires answers.
_REFUSING = ("throttle", "unavailable", "invalidToken", "failingEvent")


@dataclass(frozen=True)
class FaultRule:
    kind: str
    rate: float = 1.0
    methods: frozenset[str] | None = None
    path_pattern: str | None = None
    mailbox: str | None = None  # user id or userPrincipalName, case-insensitive
    times: int | None = None  # fires at most this often; None: until cleared
    name: str | None = None  # to clear one rule; given out when absent
    retry_after: float | None = 1.0  # throttle and unavailable
    status: int = 503  # unavailable: 500, 502, 503 or 504
    latency_seconds: float = 0.0  # latency
    lost_as: str = "503"  # lostResponse: "503" or "drop" (connection closed mid-response)
    # failingEvent: the event by id, or by the value of an extended property it carries (a
    # create carrying that value fails too); `property_id` narrows which property.
    event_id: str | None = None
    property_id: str | None = None
    property_value: str | None = None

    def matches(self, method: str, path: str, mailbox: User | None) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.mailbox is not None:
            key = self.mailbox.lower()
            if mailbox is None or key not in (
                mailbox.id.lower(),
                mailbox.user_principal_name.lower(),
            ):
                return False
        return self.path_pattern is None or re.search(self.path_pattern, path) is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        kind = str(data.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        rate = float(data.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        methods = data.get("methods")
        pattern = data.get("pathPattern")
        if pattern is not None:
            re.compile(str(pattern))
        lost_as = str(data.get("lostAs", "503"))
        if lost_as not in ("503", "drop"):
            raise ValueError("lostAs must be '503' or 'drop'")
        status = int(data.get("status", 503))
        if status not in SERVER_ERROR_STATUSES:
            raise ValueError("status must be 500, 502, 503 or 504")
        # Graph sends Retry-After with 429 and 503; a 500 comes without one.
        default_wait = 1.0 if kind == "throttle" or status == 503 else None
        retry_after = data.get("retryAfter", default_wait)
        times = data.get("times")
        if times is not None and int(times) < 1:
            raise ValueError("times must be at least 1")
        event_id, value = data.get("eventId"), data.get("propertyValue")
        if kind == "failingEvent" and not event_id and value is None:
            raise ValueError("a failingEvent rule needs eventId or propertyValue")
        return cls(
            kind=kind,
            rate=rate,
            methods=frozenset(str(m).upper() for m in methods) if methods else None,
            path_pattern=str(pattern) if pattern is not None else None,
            mailbox=str(data["mailbox"]) if data.get("mailbox") else None,
            times=None if times is None else int(times),
            name=str(data["name"]) if data.get("name") else None,
            retry_after=None if retry_after is None else float(retry_after),
            status=status,
            latency_seconds=float(data.get("latencySeconds", 0.0)),
            lost_as=lost_as,
            event_id=str(event_id) if event_id else None,
            property_id=str(data["propertyId"]) if data.get("propertyId") else None,
            property_value=None if value is None else str(value),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rate": self.rate,
            "methods": sorted(self.methods) if self.methods else None,
            "pathPattern": self.path_pattern,
            "mailbox": self.mailbox,
            "times": self.times,
            "retryAfter": self.retry_after,
            "status": self.status,
            "latencySeconds": self.latency_seconds,
            "lostAs": self.lost_as,
            "eventId": self.event_id,
            "propertyId": self.property_id,
            "propertyValue": self.property_value,
        }

    def refusal(self) -> GraphError:
        if self.kind == "throttle":
            return throttled(
                self.retry_after or 0, "Application is over its MailboxConcurrency limit."
            )
        if self.kind == "invalidToken":
            return invalid_token()
        if self.kind == "failingEvent":
            return internal_server_error()
        return server_error(self.status, self.retry_after)


@dataclass(frozen=True)
class FaultDecision:
    latency: float = 0.0
    refuse: GraphError | None = None  # answered before the request is applied
    drop: bool = False  # the connection closes before the request is applied
    lose_response: str | None = None  # "503" or "drop", after the request is applied


# Whether a request is about the event a failingEvent rule names (the API knows how to tell).
Concerns = Callable[[FaultRule], bool]


@dataclass
class FaultPlan:
    rules: Sequence[FaultRule] = ()
    seed: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _fired: dict[str, int] = field(default_factory=dict)
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def configure(self, rules: Sequence[FaultRule], seed: int) -> None:
        """Replace every rule; the RNG starts again from `seed`."""
        with self._lock:
            self._fired = {}
            self._names = itertools.count(1)
            self.rules = ()
            self.rules = self._named(rules)
            self.seed = seed
            self._rng = random.Random(seed)

    def add(self, rules: Sequence[FaultRule]) -> list[str]:
        """Add rules next to the current ones (the RNG goes on); their names."""
        with self._lock:
            added = self._named(rules)
            self.rules = (*self.rules, *added)
            return [rule.name or "" for rule in added]

    def remove(self, name: str) -> bool:
        with self._lock:
            kept = tuple(rule for rule in self.rules if rule.name != name)
            found = len(kept) != len(self.rules)
            self.rules = kept
            self._fired.pop(name, None)
            return found

    def _named(self, rules: Sequence[FaultRule]) -> tuple[FaultRule, ...]:
        taken = {rule.name for rule in self.rules}
        out = []
        for rule in rules:
            name = rule.name
            while name is None or name in taken:
                if rule.name is not None:
                    raise ValueError(f"a fault rule named {rule.name!r} exists")
                name = f"rule-{next(self._names)}"
            taken.add(name)
            out.append(replace(rule, name=name))
        return tuple(out)

    def decide(
        self,
        method: str,
        path: str,
        mailbox: User | None = None,
        concerns: Concerns | None = None,
    ) -> FaultDecision:
        latency = 0.0
        refuse: GraphError | None = None
        drop = False
        lose: str | None = None
        # Asked before taking the lock: `concerns` reads the mailbox under the state's lock.
        concerned = {
            rule.name
            for rule in self.rules
            if rule.kind == "failingEvent"
            and concerns is not None
            and rule.matches(method, path, mailbox)
            and concerns(rule)
        }
        with self._lock:
            # A token problem is found before anything else is looked at.
            for rule in sorted(self.rules, key=lambda r: r.kind != "invalidToken"):
                if not rule.matches(method, path, mailbox) or self._spent(rule):
                    continue
                if rule.kind == "failingEvent" and rule.name not in concerned:
                    continue
                if self._rng.random() >= rule.rate:
                    continue
                if rule.kind == "latency":
                    latency += rule.latency_seconds
                elif rule.kind in _REFUSING and refuse is None and not drop:
                    refuse = rule.refusal()
                elif rule.kind == "dropConnection" and refuse is None and not drop:
                    drop = True
                elif rule.kind == "lostResponse" and lose is None:
                    lose = rule.lost_as
                else:
                    continue  # outdone by an earlier rule: not counted as fired
                self._fired[rule.name or ""] = self._fired.get(rule.name or "", 0) + 1
        return FaultDecision(latency=latency, refuse=refuse, drop=drop, lose_response=lose)

    def _spent(self, rule: FaultRule) -> bool:
        return rule.times is not None and self._fired.get(rule.name or "", 0) >= rule.times

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            rules = []
            for rule in self.rules:
                item = rule.to_json()
                item["fired"] = self._fired.get(rule.name or "", 0)
                rules.append(item)
            return {"seed": self.seed, "rules": rules}


def service_unavailable(retry_after: float | None = None) -> GraphError:
    return server_error(503, retry_after)


_SERVER_ERRORS = {
    502: ("BadGateway", "The service did not answer in time; try again."),
    503: ("ServiceNotAvailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The request timed out at the gateway; try again."),
}


def server_error(status: int, retry_after: float | None = None) -> GraphError:
    headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
    if status == 500:
        error = internal_server_error()
        error.headers.update(headers)
        return error
    code, message = _SERVER_ERRORS[status]
    return GraphError(status, code, message, headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
