"""Delta rounds over a calendar view: opaque state tokens kept server-side.

A round remembers what the client was sent (instance id → changeKey). The next round compares
the current view with it: new or changed instances come back whole, vanished ones (deleted, or
moved out of the window) as `@removed`. Invalidating a mailbox's tokens answers 410 Gone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.graph_emulator.errors import GraphError

DEFAULT_DELTA_PAGE_SIZE = 100


@dataclass
class DeltaRound:
    """One round's answer, served page by page through `$skiptoken`s."""

    mailbox: str
    start: datetime
    end: datetime
    items: list[dict[str, Any]]
    seen: dict[str, str]  # the baseline the round's deltaLink stands for


@dataclass
class DeltaBaseline:
    mailbox: str
    start: datetime
    end: datetime
    seen: dict[str, str]


@dataclass
class DeltaTokens:
    """Skip and delta tokens of every mailbox; opaque random strings."""

    _pages: dict[str, tuple[DeltaRound, int]] = field(default_factory=dict)
    _baselines: dict[str, DeltaBaseline] = field(default_factory=dict)

    def _page_token(self, round_: DeltaRound, offset: int) -> str:
        token = secrets.token_urlsafe(24)
        self._pages[token] = (round_, offset)
        return token

    def page(self, token: str, mailbox: str) -> tuple[DeltaRound, int]:
        found = self._pages.get(token)
        if found is None or found[0].mailbox != mailbox:
            raise sync_state_not_found()
        return found

    def baseline(self, token: str, mailbox: str) -> DeltaBaseline:
        found = self._baselines.get(token)
        if found is None or found.mailbox != mailbox:
            raise sync_state_not_found()
        return found

    def next_page(self, round_: DeltaRound, offset: int, size: int) -> tuple[list[Any], str, bool]:
        """(items, token, final?): a skip token while more remain, else the round's delta token."""
        items = round_.items[offset : offset + size]
        if offset + size < len(round_.items):
            return items, self._page_token(round_, offset + size), False
        token = secrets.token_urlsafe(24)
        self._baselines[token] = DeltaBaseline(
            round_.mailbox, round_.start, round_.end, dict(round_.seen)
        )
        return items, token, True

    def invalidate(self, mailbox: str) -> int:
        pages = [token for token, (round_, _) in self._pages.items() if round_.mailbox == mailbox]
        bases = [token for token, base in self._baselines.items() if base.mailbox == mailbox]
        for token in pages:
            del self._pages[token]
        for token in bases:
            del self._baselines[token]
        return len(pages) + len(bases)

    def clear(self) -> None:
        self._pages.clear()
        self._baselines.clear()


def sync_state_not_found() -> GraphError:
    return GraphError(
        410,
        "syncStateNotFound",
        "The sync state generation is not found. Start a new round of delta queries.",
    )


def removed(event_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }
