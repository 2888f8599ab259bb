"""Faults the emulated Coconut API injects: throttling (429), server errors, latency, and the
listing race.

Draws come from a seeded RNG so a run with the same plan and the same request sequence fails the
same requests again. `scripted` statuses are answered first, in order, for tests that need an
exact sequence ("the next two PUTs are throttled") rather than a rate.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FaultPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    throttle_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of API requests answered 429."""
    retry_after_seconds: int = Field(default=1, ge=0)
    """`Retry-After` sent with every 429."""
    server_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of API requests answered with `server_error_status`."""
    server_error_status: int = Field(default=503, ge=500, le=599)
    latency_seconds: float = Field(default=0.0, ge=0.0)
    """Added before every API request is handled."""
    seed: int = 0
    scripted: tuple[int, ...] = ()
    """Statuses (429 or 5xx) answered to the next API requests, in order, before the rates apply."""
    listing_race: bool = False
    """Page the appointment and absence listings over the live record, as Coconut does, so that
    a change between two page requests can make an item miss its page or show twice. Off, a
    listing is paged over what it held when its page 1 was served."""

    @field_validator("scripted")
    @classmethod
    def _only_transient(cls, statuses: tuple[int, ...]) -> tuple[int, ...]:
        for status in statuses:
            if status != 429 and not 500 <= status <= 599:
                raise ValueError("scripted faults are 429 or 5xx statuses")
        return statuses


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after_seconds: int | None = None


class FaultInjector:
    """Decides, request by request, whether the API answers with a fault instead."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(plan or FaultPlan())

    def configure(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._random = random.Random(plan.seed)
            self._scripted = deque(plan.scripted)

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan.model_copy(update={"scripted": tuple(self._scripted)})

    @property
    def latency_seconds(self) -> float:
        return self._plan.latency_seconds

    @property
    def listing_race(self) -> bool:
        return self._plan.listing_race

    def next_fault(self) -> Fault | None:
        with self._lock:
            plan = self._plan
            if self._scripted:
                return self._fault(self._scripted.popleft())
            # One draw per request keeps the sequence reproducible whatever the rates are.
            draw = self._random.random()
            if draw < plan.throttle_rate:
                return self._fault(429)
            if draw < plan.throttle_rate + plan.server_error_rate:
                return self._fault(plan.server_error_status)
            return None

    def _fault(self, status: int) -> Fault:
        if status == 429:
            return Fault(429, self._plan.retry_after_seconds)
        return Fault(status)
