"""The Graph v1.0 subset: routing, the per-request pipeline (faults, throttling, counters) and
the resource handlers. Independent of HTTP so that `$batch` items run through the same code."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from local.graph_emulator.calendar import MailboxStore
from local.graph_emulator.delta import (
    DEFAULT_DELTA_PAGE_SIZE,
    DeltaRound,
    removed,
)
from local.graph_emulator.errors import (
    GraphError,
    access_denied,
    bad_request,
    invalid_body,
    invalid_user,
    mailbox_unavailable,
    user_not_found,
)
from local.graph_emulator.faults import FaultRule, service_unavailable
from local.graph_emulator.model import ExtendedProperty, StoredEvent, User, parse_occurrence_id
from local.graph_emulator.notifications import Subscription, validate_endpoint
from local.graph_emulator.odata import (
    Preferences,
    QueryOptions,
    normalize_property_id,
    parse_expand,
    parse_extended_property_filter,
    parse_prefer,
    parse_select,
    parse_user_filter,
    unsupported_filter,
)
from local.graph_emulator.rendering import EVENT_PROPERTIES, View, render_event
from local.graph_emulator.schema import GraphSchema, InvalidBody
from local.graph_emulator.state import EmulatorState
from local.graph_emulator.timezones import parse_instant

JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
MAX_SUBSCRIPTION_MINUTES = 10_080  # Outlook events
MAX_CLIENT_STATE = 128
CHANGE_TYPES = ("created", "updated", "deleted")
_DELTA_UNSUPPORTED = ("$select", "$filter", "$expand", "$orderby", "$search")


@dataclass
class GraphRequest:
    method: str
    path: str  # below /v1.0, percent-decoded, starting with "/"
    query_items: list[tuple[str, str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str  # e.g. http://127.0.0.1:8081/v1.0

    @property
    def query(self) -> QueryOptions:
        return QueryOptions(self.query_items)

    @property
    def prefs(self) -> Preferences:
        prefer = self.headers.get("prefer")
        return parse_prefer([prefer] if prefer else [])

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise invalid_body("The request body is not valid JSON.") from None

    @classmethod
    def from_url(
        cls, method: str, url: str, headers: Mapping[str, str], body: bytes, base_url: str
    ) -> GraphRequest:
        path, _, query = url.partition("?")
        return cls(
            method=method.upper(),
            path="/" + unquote(path).lstrip("/"),
            query_items=parse_query(query),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            base_url=base_url,
        )


def parse_query(query: str) -> list[tuple[str, str]]:
    # Like Graph, a '+' means a space: a literal '+' (say in a mail address) must be sent as %2B.
    items = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            items.append((unquote_plus(key), unquote_plus(value)))
    return items


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False

    @classmethod
    def from_error(cls, error: GraphError, request_id: str) -> GraphResponse:
        return cls(error.status, error.body(request_id), dict(error.headers))


Handler = Callable[[GraphRequest, dict[str, str]], Awaitable[GraphResponse]]

_USER = r"/users/(?P<user>[^/]+)"
# `/events` is the mailbox (an id resolves in any folder; the collection is the primary
# calendar), `/calendar/events` the primary calendar only, `/calendars/{id}/events` that calendar.
_SCOPE = r"(?:(?P<primary>calendar)/|calendars/(?P<cal>[^/]+)/)?"
_EVENTS = _USER + "/" + _SCOPE + "events"
_EVENT = _EVENTS + r"/(?P<event>[^/]+)"
_VIEW = _USER + "/" + _SCOPE + "calendarView"
_ABOUT_EVENT = re.compile(_EVENT + r"(?:/.*)?", re.I)
_EVENT_COLLECTION = re.compile(_EVENTS, re.I)


class GraphApi:
    def __init__(self, state: EmulatorState, schema: GraphSchema) -> None:
        self.state = state
        self.schema = schema
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile("/users", re.I), self.list_users),
            ("GET", re.compile(_USER, re.I), self.get_user),
            ("GET", re.compile(_USER + "/mailboxSettings", re.I), self.mailbox_settings),
            ("GET", re.compile(_USER + "/mailboxSettings/timeZone", re.I), self.time_zone),
            ("GET", re.compile(_USER + "/calendars", re.I), self.list_calendars),
            ("GET", re.compile(_USER + "/calendar", re.I), self.get_calendar),
            ("GET", re.compile(_USER + r"/calendars/(?P<cal>[^/]+)", re.I), self.get_calendar),
            ("GET", re.compile(_EVENTS, re.I), self.list_events),
            ("POST", re.compile(_EVENTS, re.I), self.create_event),
            ("GET", re.compile(_EVENT, re.I), self.get_event),
            ("PATCH", re.compile(_EVENT, re.I), self.update_event),
            ("DELETE", re.compile(_EVENT, re.I), self.delete_event),
            ("POST", re.compile(_EVENT + "/cancel", re.I), self.cancel_event),
            ("POST", re.compile(_EVENT + "/permanentDelete", re.I), self.permanent_delete),
            ("GET", re.compile(_EVENT + "/instances", re.I), self.instances),
            ("GET", re.compile(_VIEW, re.I), self.calendar_view),
            (
                "GET",
                re.compile(_USER + r"/(?:calendar/)?calendarView/delta(?:\(\))?", re.I),
                self.delta,
            ),
            ("GET", re.compile("/subscriptions", re.I), self.list_subscriptions),
            ("POST", re.compile("/subscriptions", re.I), self.create_subscription),
            ("GET", re.compile(r"/subscriptions/(?P<sub>[^/]+)", re.I), self.get_subscription),
            (
                "PATCH",
                re.compile(r"/subscriptions/(?P<sub>[^/]+)", re.I),
                self.update_subscription,
            ),
            (
                "DELETE",
                re.compile(r"/subscriptions/(?P<sub>[^/]+)", re.I),
                self.delete_subscription,
            ),
        ]
        # Set by the batch module, which needs this object to run its items.
        self.batch_handler: Handler | None = None

    # ----- pipeline -----

    async def handle(self, request: GraphRequest) -> GraphResponse:
        """Faults, then throttling, then the handler; every outcome is counted per mailbox."""
        request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        owner = self._mailbox_owner(request.path)
        mailbox = None if owner is None else owner.id
        decision = self.state.faults.decide(
            request.method,
            request.path,
            owner,
            lambda rule: self._concerns(request, owner, rule),
        )
        try:
            if decision.refuse is not None:
                raise decision.refuse
            if decision.drop:  # nothing is applied; the client sees the connection close
                response = GraphResponse(500, drop_connection=True)
            else:
                response = await self._admitted(request, mailbox, decision.latency)
        except GraphError as error:
            response = GraphResponse.from_error(error, request_id)
        if decision.lose_response == "drop":
            response.drop_connection = True
        elif decision.lose_response == "503":
            response = GraphResponse.from_error(service_unavailable(), request_id)
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", request_id)
        status: int | str = "dropped" if response.drop_connection else response.status
        self.state.count(mailbox, request.method, status)
        return response

    async def _admitted(
        self, request: GraphRequest, mailbox: str | None, latency: float
    ) -> GraphResponse:
        if mailbox is not None:
            self.state.throttle.admit(mailbox)
        try:
            if latency:
                await asyncio.sleep(latency)
            return await self.dispatch(request)
        finally:
            if mailbox is not None:
                self.state.throttle.release(mailbox)

    def mailbox_of(self, path: str) -> str | None:
        """The mailbox an Outlook request addresses (`/users/{x}/…`); None for directory calls."""
        owner = self._mailbox_owner(path)
        return None if owner is None else owner.id

    def _mailbox_owner(self, path: str) -> User | None:
        match = re.match(r"/users/([^/]+)/(.+)", path, re.I)
        return None if match is None else self.state.find_user(match.group(1))

    def _concerns(self, request: GraphRequest, owner: User | None, rule: FaultRule) -> bool:
        """Is this request about the event a failingEvent rule names: an item request for it, a
        create carrying its property value, or a `$filter` looking for that value?"""
        if owner is None:
            return False
        path = request.path.rstrip("/")
        item = _ABOUT_EVENT.fullmatch(path)
        if item is not None:
            event_id = item.group("event")
            occurrence = parse_occurrence_id(event_id)
            if rule.event_id is not None and rule.event_id in (
                event_id,
                occurrence[0] if occurrence else None,
            ):
                return True
            if rule.property_value is None:
                return False
            with self.state.lock:
                try:
                    event = self.state.calendar(owner.id).get(event_id)
                except GraphError:
                    return False
                return _carries(event.single_properties, rule)
        if rule.property_value is None or _EVENT_COLLECTION.fullmatch(path) is None:
            return False
        if request.method == "POST":
            try:
                body = request.json()
            except GraphError:
                return False
            props = body.get("singleValueExtendedProperties") if isinstance(body, dict) else None
            return any(
                isinstance(prop, dict)
                and prop.get("value") == rule.property_value
                and _same_property(str(prop.get("id")), rule)
                for prop in (props if isinstance(props, list) else [])
            )
        text = request.query.get("$filter")
        if not text:
            return False
        try:
            wanted = parse_extended_property_filter(text)
        except GraphError:
            return False
        return wanted.value == rule.property_value and _same_property(wanted.property_id, rule)

    async def dispatch(self, request: GraphRequest) -> GraphResponse:
        if request.path.rstrip("/").lower() == "/$batch" and request.method == "POST":
            if self.batch_handler is None:
                raise bad_request("Batching is not available.")
            return await self.batch_handler(request, {})
        path = request.path.rstrip("/") or "/"
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                return await handler(request, match.groupdict())
        if allowed:
            raise GraphError(405, "Request_BadRequest", "The HTTP method is not allowed here.")
        segment = path.strip("/").split("/")[-1] if path != "/" else ""
        raise bad_request(f"Resource not found for the segment '{segment}'.")

    # ----- helpers -----

    def _mailbox(self, key: str) -> User:
        """The user whose mailbox a request addresses, or the answer Graph gives when there is
        none it can serve: unknown user, outside the app's RBAC scope, mailbox not reachable."""
        user = self.state.find_user(key)
        if user is None:
            raise invalid_user()
        if user.access_denied:
            raise access_denied()
        if not user.has_mailbox:
            raise mailbox_unavailable(user.mailbox_error)
        return user

    def _store(self, user: User) -> MailboxStore:
        return self.state.calendar(user.id)

    def _scope(self, user: User, args: dict[str, str]) -> str | None:
        """The folder a URL confines an event to: None for `/events` (the whole mailbox)."""
        store = self._store(user)
        if args.get("cal"):
            return store.folders.calendar(args["cal"]).id
        if args.get("primary"):
            return store.primary.id
        return None

    def _present(
        self, event: StoredEvent, user: User, view: View, request: GraphRequest
    ) -> dict[str, Any]:
        """An event as a read answers it: which calendar holds it (the navigation link Graph
        adds; `$expand=calendar` for the calendar itself)."""
        rendered = render_event(event, user, view)
        folder = self._store(user).folder_of(event)
        link = f"{request.base_url}/users('{user.id}')/calendars('{folder.id}')"
        rendered["calendar@odata.associationLink"] = f"{link}/$ref"
        rendered["calendar@odata.navigationLink"] = link
        if view.expansion.calendar:
            rendered["calendar"] = folder.to_graph(user)
        return rendered

    def _body_object(self, request: GraphRequest, *, required: bool = True) -> dict[str, Any]:
        body = request.json()
        if body is None and not required:
            return {}
        if not isinstance(body, dict):
            raise invalid_body("The request body must be a JSON object.")
        return body

    def _validate(self, type_name: str, body: object, *, partial: bool = False) -> None:
        try:
            self.schema.validate(type_name, body, partial=partial)
        except InvalidBody as exc:
            raise invalid_body(str(exc)) from None

    def _ok(
        self, body: Any, request: GraphRequest, status: int = 200, applied: bool = True
    ) -> GraphResponse:
        headers = {"Content-Type": JSON_CONTENT_TYPE, "OData-Version": "4.0"}
        preference = request.prefs.applied() if applied else None
        if preference:
            headers["Preference-Applied"] = preference
        return GraphResponse(status, body, headers)

    def _view(self, request: GraphRequest) -> View:
        query = request.query
        return View(
            prefs=request.prefs,
            select=parse_select(query.get("$select"), EVENT_PROPERTIES),
            expansion=parse_expand(query.get("$expand")),
        )

    def _context(self, request: GraphRequest, tail: str) -> str:
        return f"{request.base_url}/$metadata#{tail}"

    def _page(
        self, request: GraphRequest, rendered: list[dict[str, Any]], context: str
    ) -> GraphResponse:
        skip, size = request.query.page(request.prefs)
        body: dict[str, Any] = {"@odata.context": context, "value": rendered[skip : skip + size]}
        if skip + size < len(rendered):
            items = [(k, v) for k, v in request.query_items if k.lower() != "$skip"]
            items.append(("$skip", str(skip + size)))
            body["@odata.nextLink"] = f"{request.base_url}{request.path}?{encode_query(items)}"
        return self._ok(body, request)

    # ----- users -----

    async def list_users(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        text = request.query.get("$filter")
        if text:
            prop, value = parse_user_filter(text)
            users = self.state.users_where(prop, value)
        else:
            users = self.state.users()
        rendered = [_select_user(user.to_graph(), request) for user in users]
        return self._page(request, rendered, self._context(request, "users"))

    async def get_user(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self.state.find_user(args["user"])
        if user is None:
            raise user_not_found()
        body = {"@odata.context": self._context(request, "users/$entity")}
        body.update(_select_user(user.to_graph(), request))
        return self._ok(body, request)

    async def mailbox_settings(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        settings: dict[str, Any] = {
            "archiveFolder": "",
            "timeZone": user.time_zone,
            "automaticRepliesSetting": {
                "status": "disabled",
                "externalAudience": "all",
                "internalReplyMessage": "",
                "externalReplyMessage": "",
            },
            "dateFormat": "yyyy-MM-dd",
            "timeFormat": "HH:mm",
            "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
            "userPurpose": "user",
            "language": {"locale": "en-US", "displayName": "English (United States)"},
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": user.time_zone},
            },
        }
        selected = request.query.get("$select")
        if selected:
            names = {name.strip().lower() for name in selected.split(",")}
            settings = {k: v for k, v in settings.items() if k.lower() in names}
        body = {"@odata.context": self._context(request, f"users('{user.id}')/mailboxSettings")}
        body.update(settings)
        return self._ok(body, request)

    async def time_zone(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        context = self._context(request, f"users('{user.id}')/mailboxSettings/timeZone")
        return self._ok({"@odata.context": context, "value": user.time_zone}, request)

    # ----- calendars -----

    async def list_calendars(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        with self.state.lock:
            rendered = [c.to_graph(user) for c in self._store(user).folders.calendars()]
        return self._page(
            request, rendered, self._context(request, f"users('{user.id}')/calendars")
        )

    async def get_calendar(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        with self.state.lock:
            folders = self._store(user).folders
            folder = folders.calendar(args["cal"]) if args.get("cal") else folders.primary
            body = {
                "@odata.context": self._context(request, f"users('{user.id}')/calendars/$entity")
            }
            body.update(folder.to_graph(user))
        return self._ok(body, request, applied=False)

    # ----- events -----

    async def list_events(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        view = self._view(request)
        with self.state.lock:
            events = self._store(user).items(self._scope(user, args))
            events = _filtered(events, request.query.get("$filter"))
            events = _ordered(events, request.query.get("$orderby"))
            rendered = [self._present(ev, user, view, request) for ev in events]
        return self._page(request, rendered, self._context(request, f"users('{user.id}')/events"))

    async def create_event(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        body = self._body_object(request)
        self._validate("event", body)
        with self.state.lock:
            event, _ = self.state.create_event(user.id, body, self._scope(user, args))
            rendered = render_event(event, user, View(prefs=request.prefs))
        return self._entity(request, user, rendered, status=201)

    async def get_event(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        view = self._view(request)
        with self.state.lock:
            event = self._store(user).get(args["event"], self._scope(user, args))
            rendered = self._present(event, user, view, request)
        return self._entity(request, user, rendered)

    async def update_event(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        body = self._body_object(request)
        self._validate("event", body, partial=True)
        with self.state.lock:
            event = self.state.update_event(
                user.id,
                args["event"],
                body,
                request.headers.get("if-match"),
                self._scope(user, args),
            )
            rendered = render_event(event, user, View(prefs=request.prefs))
        return self._entity(request, user, rendered)

    async def delete_event(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        with self.state.lock:
            self.state.delete_event(
                user.id, args["event"], request.headers.get("if-match"), self._scope(user, args)
            )
        return GraphResponse(204)

    async def cancel_event(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        body = self._body_object(request, required=False)
        try:
            self.schema.validate_action("cancel", body)
        except InvalidBody as exc:
            raise invalid_body(str(exc)) from None
        # The mailbox owner organises every event here: cancelling deletes it for the organizer
        # (to Deleted Items) after the cancellations went out.
        with self.state.lock:
            self.state.delete_event(user.id, args["event"], folder=self._scope(user, args))
        return GraphResponse(202)

    async def permanent_delete(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        if self._body_object(request, required=False):
            raise invalid_body("permanentDelete takes no parameters.")
        with self.state.lock:
            self.state.permanently_delete_event(user.id, args["event"], self._scope(user, args))
        return GraphResponse(204)

    def _entity(
        self, request: GraphRequest, user: User, rendered: dict[str, Any], status: int = 200
    ) -> GraphResponse:
        body = {"@odata.context": self._context(request, f"users('{user.id}')/events/$entity")}
        body.update(rendered)
        return self._ok(body, request, status)

    async def instances(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        start, end = _window(request.query)
        view = self._view(request)
        with self.state.lock:
            found = self._store(user).instances(args["event"], start, end, self._scope(user, args))
            found = _filtered(found, request.query.get("$filter"))
            rendered = [self._present(ev, user, view, request) for ev in found]
        context = self._context(request, f"users('{user.id}')/events('{args['event']}')/instances")
        return self._page(request, rendered, context)

    async def calendar_view(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        start, end = _window(request.query)
        view = self._view(request)
        with self.state.lock:
            found = self._store(user).view(start, end, self._scope(user, args))
            found = _filtered(found, request.query.get("$filter"))
            found = _ordered(found, request.query.get("$orderby"))
            rendered = [self._present(ev, user, view, request) for ev in found]
        context = self._context(request, f"users('{user.id}')/calendarView")
        return self._page(request, rendered, context)

    async def delta(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        user = self._mailbox(args["user"])
        query = request.query
        for name in _DELTA_UNSUPPORTED:
            if query.has(name):
                raise bad_request(
                    f"The query parameter '{name}' is not supported with change tracking over "
                    "the 'CalendarView' resource.",
                    code="ErrorInvalidUrlQuery",
                )
        tokens = self.state.delta
        with self.state.lock:
            skip_token, delta_token = query.get("$skiptoken"), query.get("$deltatoken")
            if skip_token:
                round_, offset = tokens.page(skip_token, user.id)
            elif delta_token:
                baseline = tokens.baseline(delta_token, user.id)
                round_ = self._delta_round(request, user, baseline.start, baseline.end)
                round_.items = _changes(round_, baseline.seen)
                offset = 0
            else:
                start, end = _window(query)
                round_ = self._delta_round(request, user, start, end)
                offset = 0
            size = request.prefs.max_page_size or DEFAULT_DELTA_PAGE_SIZE
            items, token, final = tokens.next_page(round_, offset, size)
        link = f"{request.base_url}/users/{user.id}/calendarView/delta"
        body: dict[str, Any] = {"@odata.context": self._context(request, "Collection(event)")}
        if final:
            body["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        else:
            body["@odata.nextLink"] = f"{link}?$skiptoken={token}"
        body["value"] = items
        return self._ok(body, request)

    def _delta_round(
        self, request: GraphRequest, user: User, start: datetime, end: datetime
    ) -> DeltaRound:
        # Delta items carry no extended properties: no $expand is allowed there.
        view = View(prefs=request.prefs)
        current = self.state.calendar(user.id).view(start, end)
        return DeltaRound(
            mailbox=user.id,
            start=start,
            end=end,
            items=[render_event(ev, user, view) for ev in current],
            seen={ev.id: ev.change_key for ev in current},
        )

    # ----- subscriptions -----

    async def list_subscriptions(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        value = [s.to_graph() for s in self.state.subscriptions()]
        return self._ok(
            {"@odata.context": self._context(request, "subscriptions"), "value": value}, request
        )

    async def get_subscription(self, request: GraphRequest, args: dict[str, str]) -> GraphResponse:
        subscription = self._subscription(args["sub"])
        return self._subscription_response(request, subscription)

    async def create_subscription(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        body = self._body_object(request)
        self._validate("subscription", body)
        for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not body.get(name):
                raise GraphError(400, "ValidationError", f"The property '{name}' is required.")
        change_types = tuple(part.strip() for part in str(body["changeType"]).split(","))
        if not change_types or any(part not in CHANGE_TYPES for part in change_types):
            raise GraphError(
                400, "ValidationError", "changeType must list created, updated or deleted."
            )
        user = self._subscription_mailbox(str(body["resource"]))
        client_state = body.get("clientState")
        if client_state is not None and len(str(client_state)) > MAX_CLIENT_STATE:
            raise GraphError(
                400, "ValidationError", "clientState must be at most 128 characters long."
            )
        expiration = self._expiration(body["expirationDateTime"])
        notification_url = _http_url(body["notificationUrl"], "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        lifecycle_url = _http_url(lifecycle, "lifecycleNotificationUrl") if lifecycle else None
        for url in (notification_url, lifecycle_url):
            if url is not None:
                await self._handshake(url)
        subscription = Subscription(
            id=str(uuid.uuid4()),
            resource=str(body["resource"]),
            mailbox=user.id,
            change_types=change_types,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            client_state=None if client_state is None else str(client_state),
            expiration=expiration,
            application_id=self.state.settings.application_id,
            creator_id=self.state.settings.application_id,
        )
        self.state.add_subscription(subscription)
        return self._subscription_response(request, subscription, 201)

    async def update_subscription(
        self, request: GraphRequest, args: dict[str, str]
    ) -> GraphResponse:
        subscription = self._subscription(args["sub"])
        body = self._body_object(request)
        self._validate("subscription", body, partial=True)
        changeable = {"expirationDateTime", "notificationUrl", "lifecycleNotificationUrl"}
        for key in body:
            if not key.startswith("@") and key not in changeable:
                raise GraphError(400, "ValidationError", f"The property '{key}' cannot be updated.")
        expiration = subscription.expiration
        if "expirationDateTime" in body:
            expiration = self._expiration(body["expirationDateTime"])
        notification_url = subscription.notification_url
        if body.get("notificationUrl") and body["notificationUrl"] != notification_url:
            notification_url = _http_url(body["notificationUrl"], "notificationUrl")
            await self._handshake(notification_url)
        lifecycle_url = subscription.lifecycle_url
        if (
            body.get("lifecycleNotificationUrl")
            and body["lifecycleNotificationUrl"] != lifecycle_url
        ):
            lifecycle_url = _http_url(body["lifecycleNotificationUrl"], "lifecycleNotificationUrl")
            await self._handshake(lifecycle_url)
        with self.state.lock:
            subscription.expiration = expiration
            subscription.notification_url = notification_url
            subscription.lifecycle_url = lifecycle_url
        return self._subscription_response(request, subscription)

    async def delete_subscription(
        self, request: GraphRequest, args: dict[str, str]
    ) -> GraphResponse:
        self._subscription(args["sub"])
        self.state.remove_subscription(args["sub"])
        return GraphResponse(204)

    def _subscription(self, subscription_id: str) -> Subscription:
        subscription = self.state.subscription(subscription_id)
        if subscription is None:
            raise GraphError(404, "ResourceNotFound", "The subscription was not found.")
        return subscription

    def _subscription_response(
        self, request: GraphRequest, subscription: Subscription, status: int = 200
    ) -> GraphResponse:
        body = {"@odata.context": self._context(request, "subscriptions/$entity")}
        body.update(subscription.to_graph())
        return self._ok(body, request, status, applied=False)

    def _subscription_mailbox(self, resource: str) -> User:
        match = re.fullmatch(r"/?users/([^/]+)/(?:calendar/)?events", resource.strip(), re.I)
        if match is None:
            raise GraphError(
                400, "ValidationError", "Only users/{id}/events is supported as a resource here."
            )
        key = match.group(1)
        if key.startswith("('") and key.endswith("')"):
            key = key[2:-2]
        return self._mailbox(key)

    def _expiration(self, value: Any) -> datetime:
        expiration = parse_instant(str(value), "expirationDateTime")
        now = self.state.clock()
        if expiration <= now:
            raise GraphError(400, "ValidationError", "expirationDateTime must be in the future.")
        if expiration > now + timedelta(minutes=MAX_SUBSCRIPTION_MINUTES):
            raise GraphError(
                400,
                "ValidationError",
                f"Subscription expiration can only be {MAX_SUBSCRIPTION_MINUTES} minutes in the "
                "future.",
            )
        return expiration

    async def _handshake(self, url: str) -> None:
        failure = await validate_endpoint(url, self.state.settings.validation_timeout_seconds)
        if failure is not None:
            raise failure


def encode_query(items: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='$')}={quote(v, safe=STRING_SAFE)}" for k, v in items)


STRING_SAFE = "$'(),:/@=-_.~"


def _select_user(user: dict[str, Any], request: GraphRequest) -> dict[str, Any]:
    selected = request.query.get("$select")
    if not selected:
        return user
    names = {name.strip().lower() for name in selected.split(",")} | {"id"}
    return {key: value for key, value in user.items() if key.lower() in names}


def _window(query: QueryOptions) -> tuple[datetime, datetime]:
    raw_start, raw_end = query.get("startDateTime"), query.get("endDateTime")
    if not raw_start or not raw_end:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    return parse_instant(raw_start, "startDateTime"), parse_instant(raw_end, "endDateTime")


def _same_property(property_id: str, rule: FaultRule) -> bool:
    if rule.property_id is None:
        return True
    return normalize_property_id(property_id) == normalize_property_id(rule.property_id)


def _carries(props: dict[str, ExtendedProperty], rule: FaultRule) -> bool:
    return any(
        prop.value == rule.property_value and _same_property(prop.id, rule)
        for prop in props.values()
    )


def _filtered(events: list[StoredEvent], text: str | None) -> list[StoredEvent]:
    if not text:
        return events
    match = parse_extended_property_filter(text)
    key = normalize_property_id(match.property_id)
    out = []
    for event in events:
        prop = event.single_properties.get(key)
        if prop is not None and (match.value is None or prop.value == match.value):
            out.append(event)
    return out


_ORDER_KEYS: dict[str, Callable[[StoredEvent], Any]] = {
    "start/datetime": lambda ev: ev.start,
    "end/datetime": lambda ev: ev.end,
    "createddatetime": lambda ev: ev.created,
    "lastmodifieddatetime": lambda ev: ev.modified,
    "subject": lambda ev: str(ev.fields.get("subject") or ""),
}


def _ordered(events: list[StoredEvent], text: str | None) -> list[StoredEvent]:
    if not text:
        return events
    name, _, direction = text.strip().partition(" ")
    key = _ORDER_KEYS.get(name.lower())
    if key is None or direction.strip().lower() not in ("", "asc", "desc"):
        raise unsupported_filter()
    return sorted(events, key=key, reverse=direction.strip().lower() == "desc")


def _changes(round_: DeltaRound, previous: dict[str, str]) -> list[dict[str, Any]]:
    """What changed since `previous`: new or changed instances, then `@removed` ones."""
    changed = [item for item in round_.items if previous.get(item["id"]) != item["changeKey"]]
    gone = [removed(event_id) for event_id in previous if event_id not in round_.seen]
    return changed + gone


def _http_url(value: Any, name: str) -> str:
    text = str(value)
    # Real Graph demands https; loopback http is what local webhooks can offer.
    if not re.match(r"https?://[^/\s]+", text):
        raise GraphError(400, "ValidationError", f"{name} must be an absolute http(s) URL.")
    return text
