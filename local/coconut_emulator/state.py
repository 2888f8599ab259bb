"""What the emulated Coconut holds: the staff roster, each user's external events, its record of
appointments and absences (with the listings served from it), request counts.

The API runs on uvicorn's event-loop thread while tests read and seed state from their own
thread, so every access goes through one lock and hands out copies, never live references.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from local.coconut_emulator.listings import Listings
from local.coconut_emulator.record import CoconutRecord


class StaffUser(BaseModel):
    """One entry of Coconut's staff roster (`GET /users`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    email: str
    first_name: str
    last_name: str
    calendar_sync: bool = True

    def as_resource(self) -> dict[str, Any]:
        return {
            "type": "users",
            "id": self.id,
            "attributes": {
                "email": self.email,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "calendar_sync": self.calendar_sync,
            },
        }


class RequestKey(NamedTuple):
    """How API requests are counted: method, route template (not the concrete path), status."""

    method: str
    route: str
    status: int


class UnknownUser(LookupError):
    """The user id is not on the roster."""


class CoconutState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, StaffUser] = {}
        # user id -> external id -> the PUT body's `data`, exactly as accepted.
        self._events: dict[str, dict[str, dict[str, Any]]] = {}
        self._requests: Counter[RequestKey] = Counter()
        # Coconut's appointments and absences, kept apart from the roster: an item may name
        # staff who are not (or no longer) on it, as in Coconut.
        self.record = CoconutRecord()
        self.listings = Listings(self.record)

    # --- roster -----------------------------------------------------------------------------

    def replace_users(self, users: Iterable[StaffUser]) -> None:
        """Make the roster exactly `users`; external events of users who stay are kept."""
        with self._lock:
            self._users = {user.id: user for user in users}
            self._events = {user_id: self._events.get(user_id, {}) for user_id in self._users}

    def add_user(self, user: StaffUser) -> bool:
        """Add or replace one user; True when the user is new."""
        with self._lock:
            created = user.id not in self._users
            self._users[user.id] = user
            self._events.setdefault(user.id, {})
            return created

    def users(self) -> list[StaffUser]:
        with self._lock:
            return list(self._users.values())

    def has_user(self, user_id: str) -> bool:
        with self._lock:
            return user_id in self._users

    def user(self, user_id: str) -> StaffUser:
        with self._lock:
            try:
                return self._users[user_id]
            except KeyError:
                raise UnknownUser(user_id) from None

    def set_calendar_sync(self, user_id: str, enabled: bool) -> StaffUser:
        """Turn the user's calendar sync on or off, as an administrator does in Coconut."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise UnknownUser(user_id)
            self._users[user_id] = user.model_copy(update={"calendar_sync": enabled})
            return self._users[user_id]

    # --- external events ----------------------------------------------------------------------

    def put_external_event(self, user_id: str, external_id: str, data: dict[str, Any]) -> bool:
        """Create or replace; True when created."""
        with self._lock:
            events = self._user_events(user_id)
            created = external_id not in events
            events[external_id] = copy.deepcopy(data)
            return created

    def delete_external_event(self, user_id: str, external_id: str) -> bool:
        """Remove; True when it existed."""
        with self._lock:
            return self._user_events(user_id).pop(external_id, None) is not None

    def external_events(self, user_id: str) -> dict[str, dict[str, Any]]:
        """External id -> stored `data`, in external-id order (the order the list API pages in)."""
        with self._lock:
            events = self._user_events(user_id)
            return {key: copy.deepcopy(events[key]) for key in sorted(events)}

    def _user_events(self, user_id: str) -> dict[str, dict[str, Any]]:
        if user_id not in self._users:
            raise UnknownUser(user_id)
        return self._events[user_id]

    # --- request counters ---------------------------------------------------------------------

    def count_request(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self._requests[RequestKey(method, route, status)] += 1

    def request_counts(self) -> dict[RequestKey, int]:
        with self._lock:
            return dict(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._users.clear()
            self._events.clear()
            self._requests.clear()
        self.record.clear()
        self.listings.clear()
