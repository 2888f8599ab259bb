"""A staff member's appointments and absences, listed from Coconut's record page by page.

Coconut pages over its live data, so a listing read while items change can miss an item or show
one twice (contracts/coconut-api.md). The emulator does that only when asked
(`FaultPlan.listing_race`); otherwise each listing is paged over what it held when its page 1 was
served (one snapshot per kind, user, filter and page size), so tests that are not about the race
see consistent listings. `between_pages` queues a change to make at exactly the point the race
needs: after one page has been served, before the next.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from local.coconut_emulator.external_events import parse_utc_instant
from local.coconut_emulator.jsonapi import PageRequest, Problem, page_document
from local.coconut_emulator.record import APPOINTMENTS, CoconutRecord, Kind

END_AFTER = "filter[end_after]"

_WalkKey = tuple[Kind, str, str, int]


class BadFilter(ValueError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.problem = Problem(detail, parameter=END_AFTER)


def end_after(query: Mapping[str, str]) -> datetime:
    """The required `filter[end_after]`: a UTC RFC 3339 instant written with "Z"."""
    raw = query.get(END_AFTER)
    if raw is None:
        raise BadFilter(f"{END_AFTER} is required")
    instant = parse_utc_instant(raw)
    if instant is None:
        raise BadFilter(f"{END_AFTER} must be a UTC RFC 3339 instant ending in Z")
    return instant


class Listings:
    def __init__(self, record: CoconutRecord) -> None:
        self._record = record
        self._lock = threading.Lock()
        self._snapshots: dict[_WalkKey, Sequence[Mapping[str, Any]]] = {}
        self._between_pages: deque[Callable[[], object]] = deque()

    def between_pages(self, change: Callable[[], object]) -> None:
        """Run `change` just before the next page after a first one is served (any listing).

        Queued changes run one per such page, in order. Only with the listing race on does the
        walk in progress see them; either way they change the record.
        """
        with self._lock:
            self._between_pages.append(change)

    def page(
        self, kind: Kind, user_id: str, end_after: datetime, page: PageRequest, *, live: bool
    ) -> dict[str, Any]:
        if page.number > 1:
            self._run_next_change()
        key: _WalkKey = (kind, user_id, end_after.isoformat(), page.size)
        with self._lock:
            items = None if live or page.number == 1 else self._snapshots.get(key)
        if items is None:
            items = self._items(kind, user_id, end_after)
            if page.number == 1 and not live:
                with self._lock:
                    self._snapshots[key] = items
        return page_document(items, page)

    def clear(self) -> None:
        with self._lock:
            self._snapshots.clear()
            self._between_pages.clear()

    def _run_next_change(self) -> None:
        with self._lock:
            change = self._between_pages.popleft() if self._between_pages else None
        if change is not None:
            change()

    def _items(self, kind: Kind, user_id: str, end_after: datetime) -> Sequence[Mapping[str, Any]]:
        if kind == APPOINTMENTS:
            return self._record.appointments_of(user_id, end_after)
        return self._record.unavailabilities_of(user_id, end_after)
