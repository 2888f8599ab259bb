"""Every Graph call goes through `GraphCaller`: what each answer becomes in the service's error
vocabulary, which waits are retried in place and which go back to the queue, and the per-mailbox
gates (concurrency, the throttling window Graph names, and the pacing at Graph's rate)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from sync.errors import DeltaExpired, EventGone, Permanent, Retryable, SyncError
from sync.graph.calls import (
    DIRECTORY,
    MAX_CONCURRENT_PER_MAILBOX,
    PACED,
    CallAttempts,
    GraphCaller,
    map_api_error,
    retry_later,
)
from sync.graph.errors import AccessDenied, GraphRefused, GraphRetryable, MailboxUnreachable
from sync.graph.pacing import MailboxRate


def graph_error(
    status: int, code: str | None = None, headers: dict[str, str] | None = None
) -> ODataError:
    """What msgraph-sdk raises for a Graph error answer."""
    detail = MainError(code=code, message="a message Graph wrote") if code else None
    return ODataError(response_status_code=status, response_headers=headers or {}, error=detail)


class Graph:
    """A Graph request that fails with each of `answers` in turn, then succeeds."""

    def __init__(self, *answers: BaseException) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.answers:
            raise self.answers.pop(0)
        return "answered"


# ----- mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "ErrorItemNotFound", EventGone),
        (404, "ErrorNonExistentMailbox", MailboxUnreachable),
        (404, "MailboxNotEnabledForRESTAPI", MailboxUnreachable),
        (404, None, MailboxUnreachable),
        (410, None, DeltaExpired),
        (400, "syncStateNotFound", DeltaExpired),
        (400, "resyncRequired", DeltaExpired),
        (401, "InvalidAuthenticationToken", AccessDenied),
        (403, "ErrorAccessDenied", AccessDenied),
        (400, "ErrorInvalidRequest", GraphRefused),
        (409, "ErrorIrresolvableConflict", GraphRefused),
        (429, "TooManyRequests", GraphRetryable),
        (500, None, GraphRetryable),
        (502, None, GraphRetryable),
        (503, None, GraphRetryable),
        (504, None, GraphRetryable),
    ],
)
def test_each_answer_maps_to_one_kind_of_failure(
    status: int, code: str | None, kind: type[SyncError]
) -> None:
    failure = map_api_error(graph_error(status, code), attempt=1)

    assert type(failure) is kind
    assert (failure.status, failure.code) == (status, code)
    assert "a message Graph wrote" not in str(failure), "Graph's own text is not passed on"


def test_only_item_not_found_means_the_event_is_gone() -> None:
    gone = map_api_error(graph_error(404, "ErrorItemNotFound"), attempt=1)
    unreachable = map_api_error(graph_error(404, "ErrorInvalidUser"), attempt=1)

    assert not isinstance(gone, Permanent | Retryable), "an answer handled where it is called"
    assert isinstance(unreachable, Permanent)
    assert "check the mailbox in Exchange Online" in str(unreachable), "the reason says what to do"
    assert str(unreachable).startswith("Graph answered 404 ErrorInvalidUser")


@pytest.mark.parametrize(
    ("headers", "attempt", "delay"),
    [
        ({"Retry-After": "7"}, 1, 7.0),
        ({"retry-after": "2.5"}, 1, 2.5),
        ({"Retry-After": "-3"}, 1, 0.0),
        ({"Retry-After": "soon"}, 3, 8.0),  # unreadable: back off exponentially
        ({}, 1, 2.0),
        ({}, 4, 16.0),
        ({}, 9, 60.0),  # capped at a minute
    ],
)
def test_a_retryable_answer_waits_as_long_as_graph_asks_or_backs_off(
    headers: dict[str, str], attempt: int, delay: float
) -> None:
    failure = map_api_error(graph_error(429, None, headers), attempt)

    assert isinstance(failure, GraphRetryable)
    assert failure.delay == delay


def test_retry_after_given_as_a_list_of_values_is_read() -> None:
    error = APIError("throttled", 503, {"Retry-After": ["4"]})  # type: ignore[dict-item]

    failure = map_api_error(error, attempt=1)

    assert isinstance(failure, GraphRetryable)
    assert (failure.delay, failure.status, failure.code) == (4.0, 503, None)


def test_retry_later_builds_the_retryable_failure() -> None:
    failure = retry_later(12.25, 429, "ResumeLater")

    assert isinstance(failure, GraphRetryable)
    assert (failure.delay, failure.status, failure.code, failure.source) == (
        12.25,
        429,
        "ResumeLater",
        "graph",
    )
    assert str(failure) == "Graph answered 429 ResumeLater; retry after 12.2 s"


# ----- calls -----------------------------------------------------------------------------------


async def test_a_success_is_returned_and_counted() -> None:
    caller = GraphCaller()
    graph = Graph()

    assert await caller.call("user-1", graph) == "answered"

    assert (graph.calls, caller.stats.requests, caller.stats.failures) == (1, 1, 0)
    assert dict(caller.stats.by_status) == {200: 1}


async def test_a_short_throttling_wait_is_retried_in_place() -> None:
    caller = GraphCaller(max_inline_wait=5.0)
    graph = Graph(
        graph_error(429, None, {"Retry-After": "0"}), graph_error(503, None, {"Retry-After": "0"})
    )

    assert await caller.call("user-1", graph) == "answered"

    assert graph.calls == 3
    assert (caller.stats.requests, caller.stats.throttled, caller.stats.failures) == (3, 1, 2)
    assert dict(caller.stats.by_status) == {429: 1, 503: 1, 200: 1}


async def test_a_long_wait_goes_back_to_the_caller_at_once() -> None:
    caller = GraphCaller(max_inline_wait=5.0)
    graph = Graph(graph_error(429, None, {"Retry-After": "30"}))

    with pytest.raises(GraphRetryable) as raised:
        await caller.call("user-1", graph)

    assert (raised.value.delay, raised.value.status) == (30.0, 429)
    assert graph.calls == 1, "not slept on: the queue message takes the delay"


async def test_retries_stop_after_the_attempts_allowed() -> None:
    caller = GraphCaller(max_inline_wait=5.0, attempts=3)
    graph = Graph(*[graph_error(503, None, {"Retry-After": "0"}) for _ in range(5)])

    with pytest.raises(GraphRetryable):
        await caller.call("user-1", graph)

    assert graph.calls == 3


async def test_a_request_every_attempt_of_which_was_throttled_was_never_applied() -> None:
    caller = GraphCaller(max_inline_wait=5.0, attempts=2)
    graph = Graph(*[graph_error(429, None, {"Retry-After": "0"}) for _ in range(2)])

    with pytest.raises(GraphRetryable) as raised:
        await caller.call("user-1", graph)

    assert raised.value.status == 429
    assert raised.value.never_applied


async def test_a_throttled_retry_of_a_request_that_met_a_503_may_have_been_applied() -> None:
    """A 503 can come after Graph made a write (its answer lost on the way): the 429 that
    refuses the retry does not undo that, so the failure must not say "never applied"."""
    caller = GraphCaller(max_inline_wait=5.0, attempts=2)
    graph = Graph(graph_error(503, None, {"Retry-After": "0"}), graph_error(429, None))

    with pytest.raises(GraphRetryable) as raised:
        await caller.call("user-1", graph)

    assert (graph.calls, raised.value.status) == (2, 429)
    assert not raised.value.never_applied


@pytest.mark.parametrize(
    ("first", "maybe_applied"),
    [(graph_error(503, None, {"Retry-After": "0"}), True), (graph_error(429, None), False)],
    ids=["after a 503", "after a 429"],
)
async def test_an_answer_to_a_retry_says_whether_an_earlier_attempt_may_have_been_applied(
    first: ODataError, maybe_applied: bool
) -> None:
    """A create answered on its retry after a 503 may be answered with the event the first
    attempt made, as it is now (a person may have edited it meanwhile)."""
    caller = GraphCaller(max_inline_wait=5.0)
    graph = Graph(first)
    attempts = CallAttempts()

    assert await caller.call("user-1", graph, attempts=attempts) == "answered"

    assert graph.calls == 2
    assert attempts.earlier_maybe_applied is maybe_applied


@pytest.mark.parametrize(
    "answer",
    [graph_error(404, "ErrorItemNotFound"), graph_error(403), graph_error(410), graph_error(400)],
    ids=["gone", "denied", "delta expired", "refused"],
)
async def test_answers_that_are_not_transient_are_never_retried(answer: ODataError) -> None:
    caller = GraphCaller()
    graph = Graph(answer, answer)

    with pytest.raises(SyncError) as raised:
        await caller.call("user-1", graph)

    assert not isinstance(raised.value, Retryable)
    assert graph.calls == 1
    assert caller.stats.failures == 1


async def test_a_transport_failure_is_retryable_and_names_the_failure() -> None:
    caller = GraphCaller(max_inline_wait=1.0)  # its 2 s back-off is longer: raised at once
    graph = Graph(httpx.ConnectError("connection refused"))

    with pytest.raises(GraphRetryable) as raised:
        await caller.call("user-1", graph)

    assert (raised.value.status, raised.value.code, raised.value.delay) == (
        None,
        "ConnectError",
        2.0,
    )
    assert graph.calls == 1


# ----- per-mailbox gates -----------------------------------------------------------------------


async def test_after_a_long_throttle_the_mailbox_is_closed_and_others_are_not() -> None:
    caller = GraphCaller(max_inline_wait=5.0)
    throttled = Graph(graph_error(429, None, {"Retry-After": "30"}))
    with pytest.raises(GraphRetryable):
        await caller.call("user-1", throttled)

    held_back, other = Graph(), Graph()
    with pytest.raises(GraphRetryable) as closed:
        await caller.call("user-1", held_back)
    assert await caller.call("user-2", other) == "answered"

    assert held_back.calls == 0, "no request runs into the closed window"
    assert closed.value.code == "ResumeLater"
    assert 28 < closed.value.delay <= 30
    assert other.calls == 1


async def test_a_short_window_holds_the_next_request_until_it_reopens() -> None:
    caller = GraphCaller(max_inline_wait=5.0, attempts=1)
    with pytest.raises(GraphRetryable):
        await caller.call("user-1", Graph(graph_error(503, None, {"Retry-After": "0.3"})))

    started = time.monotonic()
    assert await caller.call("user-1", Graph()) == "answered"

    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    assert await caller.call("user-2", Graph()) == "answered"
    assert time.monotonic() - started < 0.2, "another mailbox does not wait"


async def test_at_most_four_requests_run_at_once_per_mailbox() -> None:
    caller = GraphCaller()
    running: dict[str, int] = {"now": 0, "most": 0}

    def request() -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
            await asyncio.sleep(0.02)
            running["now"] -= 1
            return "answered"

        return call

    await asyncio.gather(*(caller.call("user-1", request()) for _ in range(10)))
    assert running["most"] == MAX_CONCURRENT_PER_MAILBOX == 4

    running["most"] = 0
    mailboxes = [f"user-{n}" for n in range(10)]
    await asyncio.gather(*(caller.call(mailbox, request()) for mailbox in mailboxes))
    assert running["most"] == 10, "mailboxes do not wait for each other"


async def test_requests_beyond_the_mailbox_rate_wait_for_room_instead_of_a_429() -> None:
    caller = GraphCaller(rate=MailboxRate(requests=2, window_seconds=0.3))
    graph = Graph()

    started = time.monotonic()
    for _ in range(3):
        await caller.call("user-1", graph)

    assert graph.calls == 3
    assert time.monotonic() - started >= 0.3, "the third went once the first left the window"
    assert caller.stats.throttled == 0


async def test_a_pacing_wait_longer_than_allowed_goes_back_to_the_queue() -> None:
    caller = GraphCaller(rate=MailboxRate(requests=1, window_seconds=60), max_pacing_wait=5)
    first, second = Graph(), Graph()
    await caller.call("user-1", first)

    with pytest.raises(GraphRetryable) as paced:
        await caller.call("user-1", second)

    assert second.calls == 0, "not sent: Graph would have answered 429"
    assert (paced.value.status, paced.value.code) == (429, PACED)
    assert 59 <= paced.value.delay <= 60
    assert "retry after" in str(paced.value)


async def test_directory_requests_are_not_paced_as_a_mailbox() -> None:
    caller = GraphCaller(rate=MailboxRate(requests=1, window_seconds=60), max_pacing_wait=5)
    graph = Graph()

    for _ in range(3):
        await caller.call(DIRECTORY, graph)

    assert graph.calls == 3
