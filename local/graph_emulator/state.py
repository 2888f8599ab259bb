"""Everything the emulator knows, behind one lock: users, mailboxes, subscriptions, delta tokens,
throttling, faults and counters. Graph requests and control-API edits ("a person in Outlook")
change mailboxes through the same methods, so both reach delta and change notifications."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.graph_emulator.calendar import TRANSACTION_RETURN_ORIGINAL, Change, MailboxStore
from local.graph_emulator.delta import DeltaTokens
from local.graph_emulator.errors import MAILBOX_ERRORS, GraphError
from local.graph_emulator.faults import FaultPlan
from local.graph_emulator.folders import Folder
from local.graph_emulator.model import StoredEvent, User, new_user_id
from local.graph_emulator.notifications import (
    NotificationOutbox,
    Subscription,
    change_notification,
    lifecycle_notification,
)
from local.graph_emulator.rendering import render_full
from local.graph_emulator.throttling import MailboxThrottle, ThrottleLimits

TENANT_MAILBOX = "_tenant"  # counters for requests that address no mailbox


@dataclass
class EmulatorSettings:
    # What a repeated transactionId does once the original is deleted (see README).
    transaction_id_after_delete: str = TRANSACTION_RETURN_ORIGINAL
    validation_timeout_seconds: float = 10.0
    tenant_id: str = "00000000-0000-4000-8000-00000000c0c0"
    application_id: str = "00000000-0000-4000-8000-0000000a9900"

    def to_json(self) -> dict[str, Any]:
        return {
            "transactionIdAfterDelete": self.transaction_id_after_delete,
            "validationTimeoutSeconds": self.validation_timeout_seconds,
            "tenantId": self.tenant_id,
            "applicationId": self.application_id,
        }


@dataclass
class RequestCounters:
    """Requests per mailbox by method and status, and the 429s sent."""

    by_mailbox: dict[str, dict[str, dict[str, int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    )
    throttled: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def to_json(self) -> dict[str, Any]:
        mailboxes = {
            mailbox: {
                "requests": {m: dict(statuses) for m, statuses in methods.items()},
                "throttled": self.throttled.get(mailbox, 0),
            }
            for mailbox, methods in self.by_mailbox.items()
        }
        return {"mailboxes": mailboxes, "throttledTotal": sum(self.throttled.values())}


class EmulatorState:
    def __init__(
        self,
        limits: ThrottleLimits | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.initial_limits = limits or ThrottleLimits()
        self.throttle = MailboxThrottle(self.initial_limits)
        self.faults = FaultPlan()
        self.outbox = NotificationOutbox()
        self.settings = EmulatorSettings()
        self.delta = DeltaTokens()
        self.counters = RequestCounters()
        self._users: dict[str, User] = {}
        self._calendars: dict[str, MailboxStore] = {}
        self._subscriptions: dict[str, Subscription] = {}

    # ----- users -----

    def add_user(
        self,
        user_principal_name: str,
        mail: str | None = None,
        display_name: str = "",
        time_zone: str = "UTC",
        user_id: str | None = None,
        has_mailbox: bool = True,
        access_denied: bool = False,
        mailbox_error: str = "MailboxNotEnabledForRESTAPI",
    ) -> User:
        _check_mailbox_error(mailbox_error)
        user = User(
            id=user_id or new_user_id(),
            user_principal_name=user_principal_name,
            mail=mail,
            display_name=display_name or user_principal_name.split("@")[0],
            time_zone=time_zone,
            has_mailbox=has_mailbox,
            mailbox_error=mailbox_error,
            access_denied=access_denied,
        )
        with self.lock:
            if self.find_user(user.id) or self.find_user(user.user_principal_name):
                raise ValueError("a user with that id or userPrincipalName exists")
            self._users[user.id] = user
            self._calendars[user.id] = MailboxStore(user.id, self.clock)
        return user

    def update_user(self, key: str, changes: Mapping[str, Any]) -> User:
        with self.lock:
            user = self.find_user(key)
            if user is None:
                raise KeyError(key)
            names = {
                "mail": "mail",
                "displayName": "display_name",
                "timeZone": "time_zone",
                "hasMailbox": "has_mailbox",
                "mailboxError": "mailbox_error",
                "accessDenied": "access_denied",
            }
            for name, value in changes.items():
                if name not in names:
                    raise ValueError(f"cannot change '{name}'")
                if name == "mailboxError":
                    _check_mailbox_error(value)
                if name in ("hasMailbox", "accessDenied") and not isinstance(value, bool):
                    raise ValueError(f"'{name}' must be true or false")
                setattr(user, names[name], value)
            return user

    def find_user(self, key: str) -> User | None:
        """By object id or userPrincipalName (case-insensitive); a mail address is not a key."""
        lowered = key.lower()
        with self.lock:
            for user in self._users.values():
                if user.id.lower() == lowered or user.user_principal_name.lower() == lowered:
                    return user
        return None

    def users(self) -> list[User]:
        with self.lock:
            return list(self._users.values())

    def users_where(self, prop: str, value: str) -> list[User]:
        lowered = value.lower()
        with self.lock:
            if prop == "mail":
                return [u for u in self._users.values() if (u.mail or "").lower() == lowered]
            if prop == "userprincipalname":
                return [u for u in self._users.values() if u.user_principal_name.lower() == lowered]
            return [u for u in self._users.values() if u.id.lower() == lowered]

    def user_or_raise(self, key: str) -> User:
        user = self.find_user(key)
        if user is None:
            raise KeyError(key)
        return user

    # ----- mailboxes -----

    def calendar(self, user_id: str) -> MailboxStore:
        """The events of a mailbox (all its folders; `stored()` and `view()` default to the
        primary calendar)."""
        return self._calendars[user_id]

    def create_event(
        self, user_id: str, body: Mapping[str, Any], folder: str | None = None
    ) -> tuple[StoredEvent, bool]:
        with self.lock:
            store = self.calendar(user_id)
            try:
                return store.create(body, self.settings.transaction_id_after_delete, folder)
            finally:
                self._notify_all(user_id, store.take_changes())

    def update_event(
        self,
        user_id: str,
        event_id: str,
        body: Mapping[str, Any],
        if_match: str | None = None,
        folder: str | None = None,
    ) -> StoredEvent:
        with self.lock:
            store = self.calendar(user_id)
            try:
                return store.update(event_id, body, if_match, folder)
            finally:
                self._notify_all(user_id, store.take_changes())

    def delete_event(
        self,
        user_id: str,
        event_id: str,
        if_match: str | None = None,
        folder: str | None = None,
    ) -> None:
        """To Deleted Items (an occurrence: cancelled; already in Deleted Items: purged)."""
        with self.lock:
            store = self.calendar(user_id)
            try:
                store.delete(event_id, if_match, folder)
            finally:
                self._notify_all(user_id, store.take_changes())

    def permanently_delete_event(
        self, user_id: str, event_id: str, folder: str | None = None
    ) -> None:
        with self.lock:
            store = self.calendar(user_id)
            try:
                store.permanent_delete(event_id, folder)
            finally:
                self._notify_all(user_id, store.take_changes())

    def move_event(self, user_id: str, event_id: str, folder_key: str) -> StoredEvent:
        """A person moving an event to another calendar (or to Deleted Items), by folder id or
        name."""
        with self.lock:
            store = self.calendar(user_id)
            folder = store.folders.find(folder_key)
            if folder is None:
                raise KeyError(folder_key)
            try:
                return store.move(event_id, folder.id)
            finally:
                self._notify_all(user_id, store.take_changes())

    def add_calendar(self, user_id: str, name: str) -> Folder:
        with self.lock:
            return self.calendar(user_id).folders.add_calendar(name)

    def full_events(self, user_id: str, folder: str | None = None) -> list[dict[str, Any]]:
        """Every stored item of one folder (default: the primary calendar; "all" for every
        folder), extended properties included, each with the folder holding it."""
        with self.lock:
            owner = self._users[user_id]
            store = self.calendar(user_id)
            if folder == "all":
                events = store.stored_everywhere()
            elif folder is None:
                events = store.stored()
            else:
                found = store.folders.find(folder)
                if found is None:
                    raise KeyError(folder)
                events = store.stored(found.id)
            out = []
            for event in events:
                rendered = render_full(event, owner)
                held_by = store.folder_of(event)
                rendered["folder"] = {"id": held_by.id, "name": held_by.name}
                out.append(rendered)
            return out

    # ----- subscriptions and notifications -----

    def add_subscription(self, subscription: Subscription) -> None:
        with self.lock:
            self._subscriptions[subscription.id] = subscription

    def subscription(self, subscription_id: str) -> Subscription | None:
        with self.lock:
            self._drop_expired()
            return self._subscriptions.get(subscription_id)

    def subscriptions(self) -> list[Subscription]:
        with self.lock:
            self._drop_expired()
            return list(self._subscriptions.values())

    def remove_subscription(self, subscription_id: str) -> bool:
        with self.lock:
            return self._subscriptions.pop(subscription_id, None) is not None

    def _drop_expired(self) -> None:
        # Graph deletes a subscription that was not renewed in time.
        now = self.clock()
        for key in [k for k, s in self._subscriptions.items() if s.expiration <= now]:
            del self._subscriptions[key]

    def _notify_all(self, mailbox: str, changes: Iterable[Change]) -> None:
        for change in changes:
            self._notify(mailbox, change)

    def _notify(self, mailbox: str, change: Change) -> None:
        for subscription in self.subscriptions():
            if subscription.mailbox != mailbox:
                continue
            if change.change_type not in subscription.change_types:
                continue
            payload = change_notification(
                subscription,
                change.change_type,
                change.event_id,
                change.etag,
                self.settings.tenant_id,
            )
            self.outbox.send("change", subscription.id, subscription.notification_url, payload)

    def send_lifecycle(self, subscription_id: str, lifecycle_event: str) -> Subscription:
        with self.lock:
            subscription = self._subscriptions.get(subscription_id)
            if subscription is None:
                raise KeyError(subscription_id)
            if not subscription.lifecycle_url:
                raise GraphError(
                    409, "NoLifecycleUrl", "The subscription has no lifecycleNotificationUrl."
                )
            payload = lifecycle_notification(subscription, lifecycle_event, self.settings.tenant_id)
            self.outbox.send("lifecycle", subscription.id, subscription.lifecycle_url, payload)
            if lifecycle_event == "subscriptionRemoved":
                del self._subscriptions[subscription_id]
            return subscription

    # ----- bookkeeping -----

    def count(self, mailbox: str | None, method: str, status: int | str) -> None:
        key = mailbox or TENANT_MAILBOX
        with self.lock:
            self.counters.by_mailbox[key][method.upper()][str(status)] += 1
            if status == 429:
                self.counters.throttled[key] += 1

    def invalidate_delta(self, user_id: str) -> int:
        with self.lock:
            return self.delta.invalidate(user_id)

    def reset(self) -> None:
        with self.lock:
            self._users.clear()
            self._calendars.clear()
            self._subscriptions.clear()
            self.delta.clear()
            self.counters = RequestCounters()
            self.throttle.configure(self.initial_limits)
            self.throttle.reset()
            self.faults.configure((), 0)
            self.outbox.clear()
            self.settings = EmulatorSettings()

    def seed(self, data: Mapping[str, Any]) -> None:
        """Load `{"users": [...], "events": [{"user": upn-or-id, ...event}]}`."""
        for item in _list(data.get("users")):
            self.add_user(
                user_principal_name=str(item["userPrincipalName"]),
                mail=item.get("mail"),
                display_name=str(item.get("displayName", "")),
                time_zone=str(item.get("timeZone", "UTC")),
                user_id=item.get("id"),
                has_mailbox=bool(item.get("hasMailbox", True)),
                access_denied=bool(item.get("accessDenied", False)),
                mailbox_error=str(item.get("mailboxError", "MailboxNotEnabledForRESTAPI")),
            )
            for name in item.get("calendars") or []:
                self.add_calendar(self.user_or_raise(str(item["userPrincipalName"])).id, str(name))
        for item in _list(data.get("events")):
            body = {key: value for key, value in item.items() if key not in ("user", "calendar")}
            user_id = self.user_or_raise(str(item["user"])).id
            folder = None
            if item.get("calendar"):
                found = self.calendar(user_id).folders.find(str(item["calendar"]))
                if found is None or not found.is_calendar:
                    raise ValueError(f"no calendar named {item['calendar']!r}")
                folder = found.id
            self.create_event(user_id, body, folder)


def _check_mailbox_error(code: object) -> None:
    if code not in MAILBOX_ERRORS:
        raise ValueError(f"mailboxError must be one of {', '.join(MAILBOX_ERRORS)}")


def _list(value: Any) -> Iterable[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
