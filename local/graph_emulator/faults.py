"""Injected failures: 429s, 503s, added latency and lost responses, drawn from a seeded RNG."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local.graph_emulator.errors import GraphError, throttled

FAULT_KINDS = ("throttle", "unavailable", "latency", "lostResponse")


@dataclass(frozen=True)
class FaultRule:
    """One kind of fault for requests matching `methods` and `path_pattern` (a regex search on
    the path below /v1.0), happening with probability `rate`."""

    kind: str
    rate: float = 1.0
    methods: frozenset[str] | None = None
    path_pattern: str | None = None
    retry_after: float | None = 1.0  # throttle and unavailable
    latency_seconds: float = 0.0  # latency
    lost_as: str = "503"  # lostResponse: "503" or "drop" (connection closed mid-response)

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
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
        retry_after = data.get("retryAfter", 1.0)
        return cls(
            kind=kind,
            rate=rate,
            methods=frozenset(str(m).upper() for m in methods) if methods else None,
            path_pattern=str(pattern) if pattern is not None else None,
            retry_after=None if retry_after is None else float(retry_after),
            latency_seconds=float(data.get("latencySeconds", 0.0)),
            lost_as=lost_as,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rate": self.rate,
            "methods": sorted(self.methods) if self.methods else None,
            "pathPattern": self.path_pattern,
            "retryAfter": self.retry_after,
            "latencySeconds": self.latency_seconds,
            "lostAs": self.lost_as,
        }


@dataclass(frozen=True)
class FaultDecision:
    latency: float = 0.0
    refuse: GraphError | None = None  # answered before the request is applied
    lose_response: str | None = None  # "503" or "drop", after the request is applied


@dataclass
class FaultPlan:
    rules: Sequence[FaultRule] = ()
    seed: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, rules: Sequence[FaultRule], seed: int) -> None:
        with self._lock:
            self.rules = tuple(rules)
            self.seed = seed
            self._rng = random.Random(seed)

    def decide(self, method: str, path: str) -> FaultDecision:
        latency = 0.0
        refuse: GraphError | None = None
        lose: str | None = None
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path) or self._rng.random() >= rule.rate:
                    continue
                if rule.kind == "latency":
                    latency += rule.latency_seconds
                elif rule.kind == "throttle" and refuse is None:
                    refuse = throttled(
                        rule.retry_after or 0, "Application is over its MailboxConcurrency limit."
                    )
                elif rule.kind == "unavailable" and refuse is None:
                    refuse = service_unavailable(rule.retry_after)
                elif rule.kind == "lostResponse" and lose is None:
                    lose = rule.lost_as
        return FaultDecision(latency=latency, refuse=refuse, lose_response=lose)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [rule.to_json() for rule in self.rules]}


def service_unavailable(retry_after: float | None = None) -> GraphError:
    headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
    return GraphError(
        503, "ServiceNotAvailable", "The service is temporarily unavailable.", headers
    )


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
