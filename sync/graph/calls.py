"""Every Graph call goes through here: error mapping, short retries, per-mailbox limits.

Graph allows 4 concurrent requests per app per mailbox; a semaphore per mailbox keeps this
process within that (the staff lease keeps other processes off the mailbox), and the pacer
(`sync.graph.pacing`) keeps it within the mailbox's requests per window. A 429/503/504 or a
transport failure is retried here when Graph asks for a short wait; a longer wait is raised as
`GraphRetryable` so the queue worker can put the message back with that delay instead of
sleeping. Every other answer is mapped into the service's error vocabulary (`sync.errors`).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

import httpx
from kiota_abstractions.api_error import APIError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from sync.errors import DeltaExpired, EventGone, SyncError
from sync.graph.errors import AccessDenied, GraphRefused, GraphRetryable, MailboxUnreachable
from sync.graph.pacing import MailboxPacer, MailboxRate
from sync.telemetry import count_graph_throttled

T = TypeVar("T")

MAX_CONCURRENT_PER_MAILBOX = 4
RETRYABLE = {429, 500, 502, 503, 504}
# Requests about the tenant's directory (finding a user), not about one mailbox: not paced.
DIRECTORY: Final = "directory"
# A request waits this long at most for its mailbox's window to have room; a longer wait goes
# back to the queue as a delay. Kept short: a run waiting in place holds one of the queue
# trigger's invocations (host.json `batchSize`), which the other mailboxes' work needs.
MAX_PACING_WAIT: Final = 2.0
# The code of a wait the pacer asked for (Graph was not asked).
PACED: Final = "MailboxPaced"


@dataclass
class GraphCallStats:
    """Counters for telemetry and benchmarks."""

    requests: int = 0
    throttled: int = 0
    failures: int = 0
    by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class CallAttempts:
    """What one call's attempts left behind, for a caller whose success may be a replay."""

    # An attempt before the one answered may have been applied (a 5xx or a lost connection):
    # the answer may then describe an object as it stood later, not as the request wrote it.
    earlier_maybe_applied: bool = False


def _header(headers: object, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name) or getter(name.lower())
    if isinstance(value, list | set | tuple):
        value = next(iter(value), None)
    return str(value) if value is not None else None


def _retry_after(headers: object, attempt: int) -> float:
    value = _header(headers, "Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    return min(2.0**attempt, 60.0)


def _error_code(error: APIError) -> str | None:
    detail = getattr(error, "error", None)
    code = getattr(detail, "code", None)
    return str(code) if code else None


# The one 404 that means "this item is gone" (graph/FACTS.md, "Mailboxes Graph cannot serve").
ITEM_NOT_FOUND = "ErrorItemNotFound"
DELTA_EXPIRED_CODES = frozenset({"syncStateNotFound", "resyncRequired", "SyncStateNotFound"})


def retry_later(delay: float, status: int | None, code: str | None) -> GraphRetryable:
    answered = (
        f"Graph answered {status} {code or ''}".strip()
        if status
        else (f"Graph could not be reached ({code})" if code else "Graph could not be reached")
    )
    failure = GraphRetryable(
        f"{answered}; retry after {delay:.1f} s", delay, status=status, code=code
    )
    failure.never_applied = status == 429  # Graph applies nothing it answers 429
    return failure


def map_api_error(error: APIError, attempt: int) -> SyncError:
    status = error.response_status_code
    code = _error_code(error)
    answered = f"Graph answered {status} {code or ''}".strip()
    if status in RETRYABLE:
        return retry_later(_retry_after(error.response_headers, attempt), status, code)
    if status == 410 or code in DELTA_EXPIRED_CODES:
        return DeltaExpired(answered, status=status, code=code)
    if status == 404 and code == ITEM_NOT_FOUND:
        return EventGone(answered, status=status, code=code)
    if status == 404:
        return MailboxUnreachable(
            f"{answered}: Graph cannot serve this user's mailbox (on-premises in a hybrid "
            "tenant, unlicensed or inactive); check the mailbox in Exchange Online. Its "
            "appointments are written once it is reachable",
            status=status,
            code=code,
        )
    if status == 401:
        return AccessDenied(
            f"{answered}: Graph refused the app's access token; check the app's identity "
            "(managed identity or client secret) and its tenant",
            status=status,
            code=code,
        )
    if status == 403:
        return AccessDenied(
            f"Graph denied access to the mailbox ({status} {code or 'ErrorAccessDenied'}): "
            "check the app's Exchange RBAC management scope",
            status=status,
            code=code,
        )
    return GraphRefused(answered, status=status, code=code)


class GraphCaller:
    def __init__(
        self,
        *,
        max_inline_wait: float = 5.0,
        attempts: int = 4,
        rate: MailboxRate | None = None,
        max_pacing_wait: float = MAX_PACING_WAIT,
    ) -> None:
        self._max_inline_wait = max_inline_wait
        self._max_pacing_wait = max_pacing_wait
        self._attempts = attempts
        self._slots: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(MAX_CONCURRENT_PER_MAILBOX)
        )
        self._resume_at: dict[str, float] = {}
        self._pacer = MailboxPacer(rate or MailboxRate())
        self.stats = GraphCallStats()

    async def _wait_for_mailbox(self, mailbox: str) -> None:
        """Hold a request until the mailbox takes it: its throttling window reopened (Graph's
        `Retry-After`) and the pacer has room. A long wait goes back to the caller as
        `GraphRetryable` (the queue worker turns it into a message delay)."""
        while True:
            throttled = self._resume_at.get(mailbox, 0.0) - time.monotonic()
            if throttled > self._max_inline_wait:
                raise retry_later(throttled, 429, "ResumeLater")
            paced = self._pacer.room_in(mailbox) if mailbox != DIRECTORY else 0.0
            if paced > self._max_pacing_wait:
                raise self._paced(paced)
            wait = max(throttled, paced)
            if wait <= 0:
                return
            # Looked at again after the wait: others may have taken the room meanwhile.
            await asyncio.sleep(wait)

    def _paced(self, wait: float) -> GraphRetryable:
        rate = self._pacer.rate
        return GraphRetryable(
            f"the mailbox has had its {rate.requests} Graph requests of the last "
            f"{rate.window_seconds:g} s; retry after {wait:.1f} s",
            wait,
            status=429,
            code=PACED,
        )

    async def call(
        self,
        mailbox: str,
        operation: Callable[[], Awaitable[T]],
        *,
        replayable: bool = True,
        attempts: CallAttempts | None = None,
    ) -> T:
        """Run one Graph request for `mailbox`, retrying short throttling waits.

        `replayable=False` for a request that must not be sent twice when its answer may have
        been lost (a create without a transaction id): only a 429, which Graph never applied,
        is retried here; anything else goes back to the caller, who looks before trying again.
        `attempts`, when given, is filled in with what the attempts before the answer did.
        """

        token_retried = False

        def worth_retrying(error: BaseException) -> bool:
            nonlocal token_retried
            if isinstance(error, AccessDenied) and error.status == 401 and not token_retried:
                # A token problem (401 InvalidAuthenticationToken), not a permission: once more,
                # with whatever token the credential hands out now.
                token_retried = True
                return True
            if not isinstance(error, GraphRetryable) or error.delay > self._max_inline_wait:
                return False
            return replayable or error.status == 429

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return error.delay if isinstance(error, GraphRetryable) else 0.0

        retrying = AsyncRetrying(
            retry=retry_if_exception(worth_retrying),
            wait=wait,
            stop=stop_after_attempt(self._attempts),
            reraise=True,
        )
        maybe_applied = False
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        number = attempt.retry_state.attempt_number
                        answer = await self._once(mailbox, operation, number)
                    except GraphRetryable as failure:
                        maybe_applied = maybe_applied or failure.status != 429
                        raise
                    if attempts is not None:
                        attempts.earlier_maybe_applied = maybe_applied
                    return answer
        except GraphRetryable as failure:
            # The last attempt's refusal does not speak for the earlier ones: a 503 or a
            # dropped connection before it may have come after Graph made the write.
            failure.never_applied = failure.status == 429 and not maybe_applied
            raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _once(self, mailbox: str, operation: Callable[[], Awaitable[T]], attempt: int) -> T:
        async with self._slots[mailbox]:
            await self._wait_for_mailbox(mailbox)
            self.stats.requests += 1
            paced = mailbox != DIRECTORY
            if paced:
                self._pacer.sending(mailbox)
            refused = False
            try:
                result = await operation()
            except APIError as error:
                failure = map_api_error(error, attempt)
                refused = error.response_status_code == 429
            except httpx.TransportError as error:
                failure = retry_later(min(2.0**attempt, 30.0), None, type(error).__name__)
            else:
                self.stats.by_status[200] += 1
                return result
            finally:
                if paced:
                    self._pacer.answered(mailbox, counted=not refused)
        if isinstance(failure, GraphRetryable) and failure.status in (429, 503):
            # Graph said when this mailbox takes requests again: every request for it waits
            # until then, instead of each of the concurrent ones running into the closed window.
            resume = time.monotonic() + failure.delay
            self._resume_at[mailbox] = max(self._resume_at.get(mailbox, 0.0), resume)
        if failure.status is not None:
            self.stats.by_status[failure.status] += 1
        if failure.status == 429:
            self.stats.throttled += 1
            count_graph_throttled(
                attempt=attempt,
                retry_after=failure.delay if isinstance(failure, GraphRetryable) else None,
            )
        self.stats.failures += 1
        raise failure
