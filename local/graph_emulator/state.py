"""Everything the emulator knows, behind one lock: users, calendars, subscriptions, delta tokens,
throttling, faults and counters. Graph requests and control-API edits ("a person in Outlook")
change calendars through the same methods, so both reach delta and change notifications."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.graph_emulator.calendar import TRANSACTION_RETURN_ORIGINAL, Calendar, Change
from local.graph_emulator.delta import DeltaTokens
from local.graph_emulator.errors import GraphError
from local.graph_emulator.faults import FaultPlan
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
        self._calendars: dict[str, Calendar] = {}
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
    ) -> User:
        user = User(
            id=user_id or new_user_id(),
            user_principal_name=user_principal_name,
            mail=mail,
            display_name=display_name or user_principal_name.split("@")[0],
            time_zone=time_zone,
            has_mailbox=has_mailbox,
            access_denied=access_denied,
        )
        with self.lock:
            if self.find_user(user.id) or self.find_user(user.user_principal_name):
                raise ValueError("a user with that id or userPrincipalName exists")
            self._users[user.id] = user
            self._calendars[user.id] = Calendar(user.id, self.clock)
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
                "accessDenied": "access_denied",
            }
            for name, value in changes.items():
                if name not in names:
                    raise ValueError(f"cannot change '{name}'")
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

    # ----- calendars -----

    def calendar(self, user_id: str) -> Calendar:
        return self._calendars[user_id]

    def create_event(self, user_id: str, body: Mapping[str, Any]) -> tuple[StoredEvent, bool]:
        with self.lock:
            event, created = self.calendar(user_id).create(
                body, self.settings.transaction_id_after_delete
            )
            if created:
                self._notify(user_id, Change("created", event.id, event.etag))
            return event, created

    def update_event(
        self, user_id: str, event_id: str, body: Mapping[str, Any], if_match: str | None = None
    ) -> StoredEvent:
        with self.lock:
            event = self.calendar(user_id).update(event_id, body, if_match)
            target = event.series_master_id if event.kind == "exception" else event.id
            master = self.calendar(user_id).get(target or event.id)
            self._notify(user_id, Change("updated", master.id, master.etag))
            return event

    def delete_event(self, user_id: str, event_id: str, if_match: str | None = None) -> None:
        with self.lock:
            removed = self.calendar(user_id).delete(event_id, if_match)
            if removed.id == event_id or removed.kind != "seriesMaster":
                self._notify(user_id, Change("deleted", removed.id, removed.etag))
            else:  # one occurrence of a series went: its master changed
                self._notify(user_id, Change("updated", removed.id, removed.etag))

    def full_events(self, user_id: str) -> list[dict[str, Any]]:
        with self.lock:
            owner = self._users[user_id]
            return [render_full(ev, owner) for ev in self.calendar(user_id).stored()]

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
            )
        for item in _list(data.get("events")):
            body = {key: value for key, value in item.items() if key != "user"}
            self.create_event(self.user_or_raise(str(item["user"])).id, body)


def _list(value: Any) -> Iterable[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
