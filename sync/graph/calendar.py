"""`sync.ports.MailboxCalendar` on Microsoft Graph: the operations the service performs on staff
mailboxes, through msgraph-sdk.

The service's events live in the mailbox's primary calendar, and "in the primary calendar" is a
fact to check, not to assume (graph/FACTS.md): an event a person deleted sits in Deleted Items
and still resolves under `/users/{id}/events/{eid}`, and one moved to another calendar too.
So every read, update and delete of an event, and every search for the service's events, goes
through `/users/{id}/calendar/events`, where Graph answers 404 `ErrorItemNotFound` for both.

Every request asks for immutable ids (`Prefer: IdType="ImmutableId"`), so an event keeps its id
if a person moves it between folders. The SDK's request builders make each request and its
request adapter sends it (authentication, middleware and error mapping included), but event
bodies go out and come back as plain JSON: the drafts' `to_graph()` is already the Graph shape,
and building the SDK's model tree for every event (delta pages are full of them) costs far more
CPU than the request itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.serialization import ParsableFactory
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.calendar.events.events_request_builder import (
    EventsRequestBuilder as CalendarEventsRequestBuilder,
)
from msgraph.generated.users.item.calendar.events.item.event_item_request_builder import (
    EventItemRequestBuilder,
)
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from sync.errors import EventGone
from sync.graph.calls import DIRECTORY, CallAttempts, GraphCaller
from sync.ports import DeltaPage, MailboxUser, WrittenEvent

# The extended property that marks an event as written by this service for one Coconut item.
# The GUID is this service's own property-set id; changing it would orphan existing events.
COCONUT_ID_PROPERTY = "String {6a8f3c2e-1b4d-4e7a-9c5f-0d2e8b7a6c41} Name CoconutId"
IMMUTABLE_IDS = 'IdType="ImmutableId"'
DELTA_PAGE_SIZE = 100
# Mailboxes whose events URL is kept expanded (`GraphCalendar._events_of`); past this, start over.
KEPT_EVENTS_URLS = 4096


# How a failed request's body is read: Graph's OData error (its `code` is what `calls` maps).
_ERRORS: dict[str, type[ParsableFactory]] = {"XXX": ODataError}


def _with_json(request: RequestInformation, method: Method, body: dict[str, Any]) -> None:
    request.http_method = method
    request.set_stream_content(json.dumps(body).encode(), "application/json")


def _odata_string(value: str) -> str:
    return value.replace("'", "''")


def _config(query: object | None = None, *prefer: str) -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", IMMUTABLE_IDS)
    for preference in prefer:
        config.headers.add("Prefer", preference)
    return config


def _written(event: dict[str, Any] | None) -> WrittenEvent:
    event_id = event.get("id") if event else None
    if not isinstance(event_id, str) or event is None:
        raise ValueError("Graph returned no event")
    change_key = event.get("changeKey")
    return WrittenEvent(event_id, change_key if isinstance(change_key, str) else None)


class GraphCalendar:
    def __init__(self, client: GraphServiceClient, caller: GraphCaller) -> None:
        self._client = client
        self._caller = caller
        self._events_urls: dict[str, str] = {}

    def _events_of(self, user_id: str) -> EventsRequestBuilder:
        """`/users/{id}/events`, its URL expanded by the SDK once per mailbox: kiota expands a
        request's URL template character by character on every request (measured: 125 us of
        CPU per create, 5 us with the URL kept). A builder made from a URL takes it as is."""
        url = self._events_urls.get(user_id)
        if url is None:
            if len(self._events_urls) >= KEPT_EVENTS_URLS:
                self._events_urls.clear()
            request = self._client.users.by_user_id(user_id).events.to_get_request_information()
            # The adapter fills in the base URL as it sends; the URL kept must hold it already.
            request.path_parameters["baseurl"] = self._client.request_adapter.base_url
            url = self._events_urls[user_id] = request.url
        return EventsRequestBuilder(self._client.request_adapter, url)

    async def _json(
        self,
        user_id: str,
        request: Callable[[], RequestInformation],
        attempts: CallAttempts | None = None,
    ) -> dict[str, Any] | None:
        """Send the request (made afresh for each attempt) and read its answer as JSON."""
        adapter = self._client.request_adapter

        async def send() -> bytes | None:
            raw: bytes | None = await adapter.send_primitive_async(request(), "bytes", _ERRORS)
            return raw

        raw = await self._caller.call(user_id, send, attempts=attempts)
        if not raw:
            return None
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    async def find_user(self, mail: str) -> MailboxUser | None:
        """The Microsoft 365 user whose primary e-mail is `mail`, with the mailbox time zone.

        `/users/{x}` takes an object id or UPN, not a mail address, hence the filter. Read as
        plain JSON too: the SDK's user model is hundreds of fields, and importing it alone
        costs a new instance seconds of CPU on its first sync.
        """
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"mail eq '{_odata_string(mail)}'", select=["id", "mail"]
        )
        users = self._client.users
        found = await self._json(
            DIRECTORY, lambda: users.to_get_request_information(_config(query))
        )
        match = [
            user
            for user in (found or {}).get("value") or []
            if isinstance(user, dict)
            and isinstance(user.get("id"), str)
            and str(user.get("mail") or "").casefold() == mail.casefold()
        ]
        if len(match) != 1:
            return None
        user_id: str = match[0]["id"]
        mailbox_settings = self._client.users.by_user_id(user_id).mailbox_settings
        settings = await self._json(
            user_id, lambda: mailbox_settings.to_get_request_information(_config())
        )
        zone = (settings or {}).get("timeZone")
        return MailboxUser(user_id, zone if isinstance(zone, str) and zone else "UTC")

    async def create_event(
        self, user_id: str, body: dict[str, Any], *, transaction_id: str, coconut_key: str
    ) -> WrittenEvent:
        payload = {
            **body,
            "transactionId": transaction_id,
            "singleValueExtendedProperties": [{"id": COCONUT_ID_PROPERTY, "value": coconut_key}],
        }
        events = self._events_of(user_id)

        def post() -> RequestInformation:
            request = events.to_get_request_information(_config())
            _with_json(request, Method.POST, payload)
            return request

        attempts = CallAttempts()
        written = _written(await self._json(user_id, post, attempts))
        if attempts.earlier_maybe_applied:
            # A retry answered for an event an earlier attempt made: the answer shows the event
            # as it is now, and a person may have edited it in between. Its changeKey is then
            # not known to be ours, so the next delta round that lists it writes it back.
            return WrittenEvent(written.id, None)
        return written

    async def find_events_for(self, user_id: str, coconut_key: str) -> list[WrittenEvent]:
        """Events in the primary calendar carrying this item's Coconut-id extended property."""
        return await self._events_matching(
            user_id,
            "singleValueExtendedProperties/Any(ep: ep/id eq "
            f"'{COCONUT_ID_PROPERTY}' and ep/value eq '{_odata_string(coconut_key)}')",
        )

    async def find_service_events(self, user_id: str) -> list[WrittenEvent]:
        """Every event in the primary calendar carrying the Coconut-id extended property,
        whatever its value: all the service wrote there that is still there (for a
        disconnect)."""
        return await self._events_matching(
            user_id, f"singleValueExtendedProperties/Any(ep: ep/id eq '{COCONUT_ID_PROPERTY}')"
        )

    async def _events_matching(self, user_id: str, odata_filter: str) -> list[WrittenEvent]:
        query = CalendarEventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
            filter=odata_filter, select=["id", "changeKey"]
        )
        events = self._client.users.by_user_id(user_id).calendar.events
        page = await self._json(user_id, lambda: events.to_get_request_information(_config(query)))
        found: list[WrittenEvent] = []
        while page is not None:
            found += [_written(e) for e in page.get("value") or [] if e.get("id")]
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str):
                break
            next_page = events.with_url(next_link)
            page = await self._json(
                user_id,
                lambda: next_page.to_get_request_information(_config()),  # noqa: B023
            )
        return found

    def _in_calendar(self, user_id: str, event_id: str) -> EventItemRequestBuilder:
        return self._client.users.by_user_id(user_id).calendar.events.by_event_id(event_id)

    async def update_event(self, user_id: str, event_id: str, body: dict[str, Any]) -> WrittenEvent:
        """`EventGone` when the event is not in the primary calendar any more."""
        item = self._in_calendar(user_id, event_id)

        def patch() -> RequestInformation:
            request = item.to_get_request_information(_config())
            _with_json(request, Method.PATCH, body)
            return request

        return _written(await self._json(user_id, patch))

    async def delete_event(self, user_id: str, event_id: str) -> None:
        """Remove the event; one that is already gone from the primary calendar counts as
        removed (a person who moved it to another calendar keeps it there)."""
        item = self._in_calendar(user_id, event_id)
        try:
            await self._caller.call(user_id, lambda: item.delete(request_configuration=_config()))
        except EventGone:
            return

    async def change_key_of(self, user_id: str, event_id: str) -> str | None:
        """The event's current changeKey, or None when it is not in the primary calendar (gone,
        in Deleted Items, or moved to another calendar)."""
        item = self._in_calendar(user_id, event_id)
        query = EventItemRequestBuilder.EventItemRequestBuilderGetQueryParameters(
            select=["changeKey"]
        )
        try:
            event = await self._json(
                user_id, lambda: item.to_get_request_information(_config(query))
            )
        except EventGone:
            return None
        change_key = event.get("changeKey") if event else None
        return change_key if isinstance(change_key, str) else None

    async def calendar_delta(
        self,
        user_id: str,
        *,
        link: str | None = None,
        window: tuple[datetime, datetime] | None = None,
        page_size: int = DELTA_PAGE_SIZE,
    ) -> DeltaPage:
        """One page of changes in the primary calendar's view: from a `nextLink`/`deltaLink`,
        or (with `window`) the first page of a new round. Times come back in UTC.

        Raises `DeltaExpired` when Graph no longer knows the link's state (410)."""
        delta = self._client.users.by_user_id(user_id).calendar_view.delta
        prefer = ('outlook.timezone="UTC"', f"odata.maxpagesize={page_size}")
        if link is not None:
            builder = delta.with_url(link)
            config = _config(None, *prefer)
        else:
            if window is None:
                raise ValueError("a new delta round needs its window")
            start, end = window
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                start_date_time=_utc_text(start), end_date_time=_utc_text(end)
            )
            builder, config = delta, _config(query, *prefer)
        page = await self._json(user_id, lambda: builder.to_get_request_information(config))
        if page is None:
            return DeltaPage([], None, None)
        next_link, delta_link = page.get("@odata.nextLink"), page.get("@odata.deltaLink")
        return DeltaPage(
            items=[item for item in page.get("value") or [] if isinstance(item, dict)],
            next_link=next_link if isinstance(next_link, str) else None,
            delta_link=delta_link if isinstance(delta_link, str) else None,
        )


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
