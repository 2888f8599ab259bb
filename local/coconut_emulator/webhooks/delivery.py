"""Deliver webhooks the way Coconut does: sign, POST, and retry any non-2xx with back-off.

Every retry of one event sends the same delivery id and the same body bytes, re-signed with a
fresh timestamp (a receiver rejects timestamps older than 300 s, and retries go on for up to
24 hours). Every attempt is recorded, for tests and benchmarks.

Given Coconut's record (the API emulator's `record`), the sender writes each change there before
delivering it, as Coconut changes its data before it tells anyone: the listings then agree with
the webhooks. The record's revision rules make redeliveries and out-of-order sends harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)
from tenacity.stop import stop_base

from local.coconut_emulator.webhooks.signing import TIMESTAMP_HEADER, encode_body, signed_headers


class EnvelopeRecord(Protocol):
    """Where each change goes before it is delivered: `CoconutRecord`, or a remote emulator's
    `ControlClient`."""

    def apply(self, envelope: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off between attempts: first_delay, then x multiplier, capped."""

    first_delay: float = 30.0
    multiplier: float = 2.0
    max_delay: float = 3600.0
    give_up_after: float = 24 * 3600.0
    """Seconds since the first attempt after which Coconut stops retrying (the contract: 24 h)."""
    max_attempts: int | None = None
    """Optional cap on attempts, for tests that want a bounded run."""

    def stop(self) -> stop_base:
        stop: stop_base = stop_after_delay(self.give_up_after)
        if self.max_attempts is not None:
            stop = stop | stop_after_attempt(self.max_attempts)
        return stop


@dataclass(frozen=True)
class Attempt:
    delivery_id: str | None
    number: int
    timestamp: int | None
    """The `X-Coconut-Timestamp` sent, if any."""
    sent_at: datetime
    elapsed_seconds: float
    status: int | None
    """None when no response arrived (connection refused, timeout, ...)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Delivery:
    """One event and every attempt made to deliver it."""

    delivery_id: str
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def status(self) -> int | None:
        return self.attempts[-1].status if self.attempts else None


@dataclass(frozen=True)
class PreparedDelivery:
    """A request sent exactly as given: no re-signing, no retry (used for bad deliveries)."""

    body: bytes
    headers: dict[str, str]
    delivery_id: str | None
    expected_status: int | None = None
    """What the contract says the receiver answers, when it says so."""


class WebhookSender:
    """Sends to one endpoint (e.g. `http://127.0.0.1:7071/api/coconut/webhooks`)."""

    def __init__(
        self,
        url: str,
        secrets: str | Sequence[str],
        *,
        backoff: Backoff | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        record: EnvelopeRecord | None = None,
    ) -> None:
        self.url = url
        self.record = record
        # Several secrets sign with every one of them, as during a rotation.
        self.secrets = [secrets] if isinstance(secrets, str) else list(secrets)
        self.backoff = backoff or Backoff()
        self.clock = clock
        # The 24-hour limit is measured on the real monotonic clock, so a `sleep` that does not
        # really wait needs `Backoff.max_attempts` to end.
        self._sleep = sleep
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.attempts: list[Attempt] = []
        """Every attempt this sender made, in the order they finished."""

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def now(self) -> int:
        return int(self.clock())

    # --- normal deliveries --------------------------------------------------------------------

    async def deliver(self, envelope: Mapping[str, Any]) -> Delivery:
        """Record the change (given a record), then deliver the envelope until a 2xx or until
        Coconut would give up."""
        if self.record is not None:
            self.record.apply(envelope)
        return await self.deliver_body(str(envelope["id"]), encode_body(envelope))

    async def deliver_body(self, delivery_id: str, body: bytes) -> Delivery:
        """Deliver bytes as they are; the record is not touched (use `deliver` for that)."""
        delivery = Delivery(delivery_id, body)

        async def attempt() -> Attempt:
            headers = signed_headers(delivery_id, body, self.secrets, self.now())
            result = await self._post(body, headers, delivery_id, len(delivery.attempts) + 1)
            delivery.attempts.append(result)
            return result

        retrying = AsyncRetrying(
            stop=self.backoff.stop(),
            wait=wait_exponential(
                multiplier=self.backoff.first_delay,
                exp_base=self.backoff.multiplier,
                max=self.backoff.max_delay,
            ),
            retry=retry_if_result(lambda result: not result.ok),
            sleep=self._sleep,
            retry_error_callback=_last_result,
        )
        await retrying(attempt)
        return delivery

    async def deliver_twice(self, envelope: Mapping[str, Any]) -> tuple[Delivery, Delivery]:
        """The same event delivered again after the first delivery finished."""
        return await self.deliver(envelope), await self.deliver(envelope)

    async def deliver_in_order(
        self, envelopes: Sequence[Mapping[str, Any]], order: Sequence[int] | None = None
    ) -> list[Delivery]:
        """One after another in `order` (indexes into `envelopes`; default: newest first).

        Returns the deliveries in the order of `envelopes`, not the order they were sent.
        """
        order = list(reversed(range(len(envelopes)))) if order is None else list(order)
        if sorted(order) != list(range(len(envelopes))):
            raise ValueError("order must name every envelope exactly once")
        deliveries: dict[int, Delivery] = {}
        for index in order:
            deliveries[index] = await self.deliver(envelopes[index])
        return [deliveries[index] for index in range(len(envelopes))]

    async def deliver_concurrently(self, envelopes: Sequence[Mapping[str, Any]]) -> list[Delivery]:
        """All at once, each with its own retries; results in the order of `envelopes`."""
        return list(await asyncio.gather(*(self.deliver(envelope) for envelope in envelopes)))

    # --- one request as prepared --------------------------------------------------------------

    async def send(self, prepared: PreparedDelivery) -> Attempt:
        """POST exactly once with exactly the prepared headers and body."""
        return await self._post(prepared.body, prepared.headers, prepared.delivery_id, 1)

    async def _post(
        self, body: bytes, headers: Mapping[str, str], delivery_id: str | None, number: int
    ) -> Attempt:
        raw_timestamp = headers.get(TIMESTAMP_HEADER, "")
        timestamp = int(raw_timestamp) if raw_timestamp.lstrip("-").isdigit() else None
        sent_at = datetime.now(UTC)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(self.url, content=body, headers=dict(headers))
            status = response.status_code
        except httpx.TransportError as failure:
            error = type(failure).__name__
        attempt = Attempt(
            delivery_id=delivery_id,
            number=number,
            timestamp=timestamp,
            sent_at=sent_at,
            elapsed_seconds=time.perf_counter() - started,
            status=status,
            error=error,
        )
        self.attempts.append(attempt)
        return attempt


def _last_result(state: RetryCallState) -> Attempt:
    """When retries run out, the outcome is the last attempt, not an exception."""
    assert state.outcome is not None
    result: Attempt = state.outcome.result()
    return result
