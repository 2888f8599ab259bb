"""The Coconut API client: the staff roster, each staff member's appointments and absences, and
the busy blocks (contracts/coconut-api.md).

Transient failures (429, 5xx, transport errors) are retried here with exponential back-off and
full jitter; a 429's `Retry-After` is honoured, capped at `max_wait`. Repeating a PUT or DELETE
is safe: both are idempotent in Coconut. Errors carry status codes, ids and JSON pointers only:
Coconut's error bodies and the roster may name people, and exceptions end up in logs.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

# A listed item is exactly the webhook's resource: validated by the webhook's own models.
from sync.coconut.webhook_models import (
    Appointment,
    AppointmentResource,
    Unavailability,
    UnavailabilityResource,
)
from sync.errors import Permanent, Retryable, Source
from sync.http_tracing import TracedTransport
from sync.http_transport import PooledTransport
from sync.imports.busy_time import BusyBlock

PAGE_SIZE: Final = 100
FIRST_BACKOFF: Final = 0.5  # seconds; doubles per attempt, full jitter, capped at max_wait
DEFAULT_TIMEOUT: Final = httpx.Timeout(15.0, connect=5.0)


# Coconut's failures in the service's error vocabulary (`sync.errors`).
# When Coconut fails without saying for how long, the work waits this long.
DEFAULT_RETRY_SECONDS: Final = 30.0


class CoconutUnavailable(Retryable):
    """Still throttled (429), failing (5xx) or unreachable after every attempt."""

    source: Source = "coconut"

    def __init__(self, status: int | None, retry_after: float | None = None) -> None:
        reason = f"answered {status}" if status is not None else "could not be reached"
        super().__init__(
            f"Coconut {reason}",
            retry_after if retry_after is not None else DEFAULT_RETRY_SECONDS,
            status=status,
        )
        # What Coconut asked for last, if anything (the client's own retries honour it).
        self.retry_after = retry_after


class CoconutRefused(Permanent):
    """Base class of Coconut's answers that no retry heals."""

    source: Source = "coconut"

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message, status=status)


class CoconutAuthFailed(CoconutRefused):
    """401/403: the API key is missing, wrong or not allowed."""

    def __init__(self, status: int) -> None:
        super().__init__(f"Coconut refused the API key ({status})", status)


class UnknownCoconutUser(CoconutRefused):
    """404 on a user's resources: the user is not (or no longer) on Coconut's roster."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"Coconut has no user {user_id!r} (404)", 404)
        self.user_id = user_id


class CoconutRejected(CoconutRefused):
    """Coconut refused the request itself (422 invalid body, or another 4xx)."""

    def __init__(self, status: int, fields: tuple[str, ...] = ()) -> None:
        where = f" at {', '.join(fields)}" if fields else ""
        super().__init__(f"Coconut rejected the request ({status}){where}", status)
        self.fields = fields


class UnexpectedCoconutAnswer(CoconutRefused):
    """A success status whose body does not follow the contract."""

    def __init__(self, status: int, fields: tuple[str, ...] = ()) -> None:
        where = f" at {', '.join(fields)}" if fields else ""
        super().__init__(f"Coconut answered {status} with an unexpected body{where}", status)
        self.fields = fields


class CoconutUser(BaseModel):
    """A staff member on Coconut's roster: what the sync needs, nothing more."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1)
    email: str = Field(repr=False)
    calendar_sync: bool


# --- the contract's documents, read strictly where the service relies on them -------------------


class _Pagination(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    total_pages: int = Field(ge=0)


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pagination: _Pagination


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[dict[str, Any]]
    meta: _Meta


class _UserAttributes(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    email: str
    calendar_sync: bool


class _UserResource(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    id: str
    attributes: _UserAttributes


class _ExternalEvent(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    id: str


_Listed = TypeVar("_Listed", Appointment, Unavailability)


def _end_after(moment: datetime) -> str:
    """`filter[end_after]`: the instant in UTC with "Z", whole seconds.

    Dropping the fraction moves the instant back, never forward, so the listing can only grow.
    """
    if moment.utcoffset() is None:
        raise ValueError("end_after must be an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _newest_once(items: list[_Listed]) -> list[_Listed]:
    """Each id once, at its highest revision, ordered by start (then id)."""
    newest: dict[str, _Listed] = {}
    for item in items:
        held = newest.get(item.id)
        if held is None or item.revision > held.revision:
            newest[item.id] = item
    return sorted(newest.values(), key=lambda item: (item.start, item.id))


def _error_paths(error: ValidationError) -> tuple[str, ...]:
    # Locations only: pydantic's messages quote the offending input, which may be an e-mail.
    return tuple("/".join(str(part) for part in item["loc"]) for item in error.errors())


_Resource = TypeVar("_Resource", AppointmentResource, UnavailabilityResource)


def _appointment(resource: AppointmentResource) -> Appointment:
    # As the webhook parser builds it: the resource's attributes plus its id.
    return Appointment(id=resource.id, **dict(resource.attributes))


def _unavailability(resource: UnavailabilityResource) -> Unavailability:
    return Unavailability(id=resource.id, **dict(resource.attributes))


def _rejected_fields(response: httpx.Response) -> tuple[str, ...]:
    """JSON pointers (or query parameters) named by a JSON:API error document, if any."""
    try:
        document = response.json()
    except ValueError:
        return ()
    errors = document.get("errors") if isinstance(document, dict) else None
    fields: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        source = error.get("source") if isinstance(error, dict) else None
        if not isinstance(source, dict):
            continue
        where = source.get("pointer", source.get("parameter"))
        if isinstance(where, str) and where and where not in fields:
            fields.append(where)
    return tuple(fields)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP-date: not what the contract promises; back off instead
    return None if math.isnan(seconds) else max(0.0, seconds)


def _segment(value: str) -> str:
    # RFC 3986 unreserved characters stay; everything else, "/" included, is escaped.
    return quote(value, safe="")


class CoconutApi:
    """Async client for the Coconut API, one per process (it holds a connection pool)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        max_wait: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("a Coconut API key is required")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=DEFAULT_TIMEOUT,
            transport=TracedTransport(PooledTransport(), peer="coconut"),
        )
        self._max_attempts = max_attempts
        self._max_wait = max_wait
        self._backoff = wait_random_exponential(multiplier=FIRST_BACKOFF, max=max_wait)
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close the connection pool, if this client opened it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> CoconutApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the contract ---------------------------------------------------------------------------

    async def roster(self) -> list[CoconutUser]:
        """Every user on the roster (`calendar_sync` tells which ones to sync), each once."""
        users: dict[str, CoconutUser] = {}
        async for item in self._pages("/users", user_id=None):
            try:
                resource = _UserResource.model_validate(item)
            except ValidationError as error:
                raise UnexpectedCoconutAnswer(200, _error_paths(error)) from None
            users.setdefault(
                resource.id,
                CoconutUser(
                    id=resource.id,
                    email=resource.attributes.email,
                    calendar_sync=resource.attributes.calendar_sync,
                ),
            )
        return list(users.values())

    async def busy_blocks(self, user_id: str) -> dict[str, dict[str, Any]]:
        """External id -> the resource Coconut holds, for every external event of `user_id`."""
        held: dict[str, dict[str, Any]] = {}
        async for item in self._pages(self._events_path(user_id), user_id=user_id):
            try:
                external_id = _ExternalEvent.model_validate(item).id
            except ValidationError as error:
                raise UnexpectedCoconutAnswer(200, _error_paths(error)) from None
            held[external_id] = item
        return held

    async def appointments(self, user_id: str, *, end_after: datetime) -> list[Appointment]:
        """Every appointment of `user_id` that ends after `end_after`, booked or cancelled, from
        Coconut's own record (`GET /users/{id}/appointments`), every page followed.

        Each item is validated exactly as a webhook's appointment resource is. A listing read
        while Coconut changes can show an item twice: each id is returned once, at its highest
        revision, ordered by start. It can also miss an item: what the caller concludes from an
        absence must allow for a webhook that arrived after the listing began.

        Raises `UnknownCoconutUser` (404), `CoconutRejected` naming the query parameter (422),
        `CoconutUnavailable` once retries of 429/5xx run out, `CoconutAuthFailed`, and
        `UnexpectedCoconutAnswer` when a page or any item breaks the contract. One invalid item
        fails the whole listing on purpose: left out, it would read as "gone" to a caller that
        treats a complete listing as the truth, and its event would be removed from a calendar.
        The error names `appointments[<position in the listing>]/<field path>`, never a value.
        """
        items = await self._listing(
            "appointments", user_id, end_after, AppointmentResource, _appointment
        )
        return _newest_once(items)

    async def unavailabilities(self, user_id: str, *, end_after: datetime) -> list[Unavailability]:
        """Every absence of `user_id` that ends after `end_after`
        (`GET /users/{id}/unavailabilities`); the same rules and errors as `appointments`."""
        items = await self._listing(
            "unavailabilities", user_id, end_after, UnavailabilityResource, _unavailability
        )
        return _newest_once(items)

    async def put_busy_block(self, user_id: str, block: BusyBlock) -> bool:
        """Create or replace the block; True when Coconut answered 201 (created).

        After a retry whose first attempt did land, Coconut answers 200: the result is for
        telemetry, not for deciding anything.
        """
        response = await self._request(
            "PUT",
            f"{self._events_path(user_id)}/{_segment(block.external_id)}",
            user_id=user_id,
            ok=frozenset({200, 201}),
            body=block.to_coconut(),
        )
        return response.status_code == 201

    async def delete_busy_block(self, user_id: str, external_id: str) -> None:
        """Remove the block. 404 counts as done: it is gone (or the user is, with it)."""
        await self._request(
            "DELETE",
            f"{self._events_path(user_id)}/{_segment(external_id)}",
            user_id=None,  # a 404 here is "already gone", not an unknown user
            ok=frozenset({204, 404}),
        )

    # --- plumbing -------------------------------------------------------------------------------

    @staticmethod
    def _events_path(user_id: str) -> str:
        return f"/users/{_segment(user_id)}/external-events"

    async def _listing(
        self,
        listing: str,
        user_id: str,
        end_after: datetime,
        resource: type[_Resource],
        to_item: Callable[[_Resource], _Listed],
    ) -> list[_Listed]:
        """Every item of one of a user's listings, each validated as the webhook's resource."""
        items: list[_Listed] = []
        async for raw in self._pages(
            f"/users/{_segment(user_id)}/{listing}",
            user_id=user_id,
            filters={"filter[end_after]": _end_after(end_after)},
        ):
            where = f"{listing}[{len(items)}]"
            try:
                # Strict JSON validation, as for a webhook body: "2026-12-01T14:00:00-05:00" is
                # read as a datetime, but a number is never a string.
                validated = resource.model_validate_json(json.dumps(raw), strict=True)
            except ValidationError as error:
                paths = tuple(f"{where}/{path}" for path in _error_paths(error))
            else:
                items.append(to_item(validated))
                continue
            # Raised outside the handler: the ValidationError holds the item (customer data) and
            # must not ride along as __context__ into a logged traceback.
            raise UnexpectedCoconutAnswer(200, paths)
        return items

    async def _pages(
        self,
        path: str,
        *,
        user_id: str | None,
        filters: Mapping[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Items of every page, following `meta.pagination.total_pages` (read afresh per page)."""
        number = 1
        while True:
            response = await self._request(
                "GET",
                path,
                user_id=user_id,
                ok=frozenset({200}),
                params={
                    **(filters or {}),
                    "page[number]": str(number),
                    "page[size]": str(PAGE_SIZE),
                },
            )
            try:
                page = _Page.model_validate(response.json())
            except ValidationError as error:
                raise UnexpectedCoconutAnswer(200, _error_paths(error)) from None
            except ValueError:
                raise UnexpectedCoconutAnswer(200) from None
            for item in page.data:
                yield item
            # An empty page ends the walk too, should the total be overstated.
            if number >= page.meta.pagination.total_pages or not page.data:
                return
            number += 1

    async def _request(
        self,
        method: str,
        path: str,
        *,
        user_id: str | None,
        ok: frozenset[int],
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(CoconutUnavailable),
            wait=self._wait,
            stop=stop_after_attempt(self._max_attempts),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(method, path, user_id, ok, params, body)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, CoconutUnavailable) and error.retry_after is not None:
            return min(error.retry_after, self._max_wait)
        return float(self._backoff(state))

    async def _once(
        self,
        method: str,
        path: str,
        user_id: str | None,
        ok: frozenset[int],
        params: Mapping[str, str] | None,
        body: dict[str, Any] | None,
    ) -> httpx.Response:
        try:
            response = await self._client.request(
                method,
                self._base_url + path,
                headers=self._headers,
                params=params,
                json=body,  # httpx sends it as application/json
            )
        except httpx.TransportError as error:
            raise CoconutUnavailable(None) from error
        status = response.status_code
        if status in ok:
            return response
        if status == 429 or status >= 500:
            raise CoconutUnavailable(status, _retry_after(response))
        if status in (401, 403):
            raise CoconutAuthFailed(status)
        if status == 404 and user_id is not None:
            raise UnknownCoconutUser(user_id)
        raise CoconutRejected(status, _rejected_fields(response))
