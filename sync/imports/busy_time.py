"""Which Exchange events become "Busy" blocks in Coconut, and what those blocks are (pure).

The input is what `GET /users/{id}/calendarView/delta` returns, read with
`Prefer: outlook.timezone="UTC"`. On `/users/{id}` that is the mailbox's *primary* calendar only:
other calendars of the mailbox are never read, so never imported.

`classify` decides one delta item (DESIGN.md, "Import"):

| item                                                     | decision                      |
| -------------------------------------------------------- | ----------------------------- |
| written by the service itself (its id in the export map) | `Skip("own_event")`, no echo  |
| `@removed` (deleted, or moved out of the window)         | `Removal("deleted")`          |
| `type: seriesMaster`                                     | `Skip("series_master")`: its  |
|                                                          | occurrences come on their own |
| start or end unreadable                                  | `Skip("malformed")`           |
| ends at or before the window start                       | `Skip("before_window")`: past |
|                                                          | changes are ignored           |
| `isCancelled`                                            | `Removal("cancelled")`        |
| `showAs` other than busy, tentative, oof                 | `Removal("not_busy")`         |
| no start or end, or start not before end                 | `Removal("no_duration")`      |
| anything else                                            | `BusyBlock`                   |

A change that makes an event no longer count is a `Removal`, not a `Skip`, so a block imported
earlier disappears from Coconut (an event that became "free" must free the slot). A removal of a
block Coconut never had is harmless: Coconut answers 404 and that counts as done.

External ids are `"ex-" + sha256(Graph event id)` in hex (67 characters). Graph ids are long
(~150 characters), case-sensitive and hold `/`, `+`, `=`; the hash is short, needs no escaping
in a URL path, and is the same on every sync. Each occurrence of a recurring series has its own
Graph id, hence its own block. The prefix also marks which of Coconut's external events are the
service's: a full resync never deletes others (`plan_full_resync`).

All-day events keep the instants Graph gives (their midnights, in the event's own time zone,
converted to UTC) and say `all_day: true`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from sync.timezones import UnknownTimeZone, mailbox_zone

BUSY_TITLE: Final = "Busy"
RESOURCE_TYPE: Final = "external-events"
EXTERNAL_ID_PREFIX: Final = "ex-"
MAX_EXTERNAL_ID_LENGTH: Final = 255
_SERVICE_EXTERNAL_ID: Final = re.compile(rf"{EXTERNAL_ID_PREFIX}[0-9a-f]{{64}}", re.ASCII)

ShowAs = Literal["busy", "tentative", "oof"]
_IMPORTED_SHOW_AS: Final[frozenset[str]] = frozenset({"busy", "tentative", "oof"})


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


UtcInstant = Annotated[AwareDatetime, AfterValidator(_as_utc)]


def external_id_for(event_id: str) -> str:
    """The Coconut external id of the block for one Exchange event (or occurrence)."""
    return EXTERNAL_ID_PREFIX + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def is_service_external_id(external_id: str) -> bool:
    """True for an external id `external_id_for` could have made."""
    return _SERVICE_EXTERNAL_ID.fullmatch(external_id) is not None


def rfc3339_utc(moment: datetime) -> str:
    """`2026-12-02T15:00:00Z`: the instant in UTC, with "Z" (sub-second digits only if any)."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


class BusyBlock(BaseModel):
    """Busy time Coconut should hold for one Exchange event occurrence: times only, no content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    external_id: str = Field(min_length=1, max_length=MAX_EXTERNAL_ID_LENGTH)
    start: UtcInstant
    end: UtcInstant
    all_day: bool
    show_as: ShowAs

    @model_validator(mode="after")
    def _has_duration(self) -> BusyBlock:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def to_coconut(self) -> dict[str, Any]:
        """The body of `PUT /users/{user_id}/external-events/{external_id}`, exactly."""
        return {"data": self.coconut_data()}

    def coconut_data(self) -> dict[str, Any]:
        """The resource itself, as Coconut also lists it back."""
        return {
            "type": RESOURCE_TYPE,
            "id": self.external_id,
            "attributes": {
                "title": BUSY_TITLE,
                "start": rfc3339_utc(self.start),
                "end": rfc3339_utc(self.end),
                "all_day": self.all_day,
                "show_as": self.show_as,
            },
        }


RemovalReason = Literal["deleted", "cancelled", "not_busy", "no_duration"]
SkipReason = Literal["own_event", "series_master", "before_window", "malformed"]


class Removal(BaseModel):
    """Coconut must not hold a block for this event (DELETE it; 404 means it never had one)."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    reason: RemovalReason


class Skip(BaseModel):
    """Nothing to do for this item; the reason is for telemetry."""

    model_config = ConfigDict(frozen=True)

    reason: SkipReason


ImportDecision = BusyBlock | Removal | Skip


class _Unreadable(ValueError):
    """A `dateTimeTimeZone` that is present but cannot be read as an instant."""


def _instant(value: object) -> datetime | None:
    """The UTC instant of a Graph `dateTimeTimeZone`; None when it is absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Unreadable
    text, zone = value.get("dateTime"), value.get("timeZone")
    if text is None:
        return None
    if not isinstance(text, str):
        raise _Unreadable
    try:
        # Python 3.11 reads Graph's seven fractional digits (it keeps six).
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Unreadable from None
    if moment.tzinfo is None:
        if not isinstance(zone, str):
            raise _Unreadable
        try:
            moment = moment.replace(tzinfo=mailbox_zone(zone))
        except UnknownTimeZone:
            raise _Unreadable from None
    return moment.astimezone(UTC)


def event_end(item: Mapping[str, Any]) -> datetime | None:
    """When a delta item's event ends (None: not said, or not readable)."""
    try:
        return _instant(item.get("end"))
    except _Unreadable:
        return None


def classify(
    item: Mapping[str, Any], *, window_start: datetime, own_event_ids: Container[str]
) -> ImportDecision:
    """What one calendarView delta item means for the staff member's busy time in Coconut."""
    if window_start.tzinfo is None:
        raise ValueError("window_start must be timezone-aware")
    event_id = item.get("id")
    if not isinstance(event_id, str) or not event_id:
        return Skip(reason="malformed")
    if event_id in own_event_ids:
        return Skip(reason="own_event")
    external_id = external_id_for(event_id)
    if "@removed" in item:
        return Removal(external_id=external_id, reason="deleted")
    if item.get("type") == "seriesMaster":
        return Skip(reason="series_master")
    try:
        start, end = _instant(item.get("start")), _instant(item.get("end"))
    except _Unreadable:
        return Skip(reason="malformed")
    if end is not None and end <= window_start:
        return Skip(reason="before_window")
    if item.get("isCancelled") is True:
        return Removal(external_id=external_id, reason="cancelled")
    show_as = item.get("showAs")
    if show_as not in _IMPORTED_SHOW_AS:
        return Removal(external_id=external_id, reason="not_busy")
    if start is None or end is None or end <= start:
        return Removal(external_id=external_id, reason="no_duration")
    return BusyBlock(
        external_id=external_id,
        start=start,
        end=end,
        all_day=item.get("isAllDay") is True,
        show_as=show_as,
    )


@dataclass(frozen=True)
class NetChanges:
    """What a run of delta items adds up to: the last word on each external id wins."""

    put: Mapping[str, BusyBlock]
    delete: frozenset[str]


def net_changes(decisions: Iterable[ImportDecision]) -> NetChanges:
    """Fold decisions in delta order: a replayed or later-changed event counts once, as it ended."""
    put: dict[str, BusyBlock] = {}
    delete: set[str] = set()
    for decision in decisions:
        if isinstance(decision, BusyBlock):
            put[decision.external_id] = decision
            delete.discard(decision.external_id)
        elif isinstance(decision, Removal):
            put.pop(decision.external_id, None)
            delete.add(decision.external_id)
    return NetChanges(put=put, delete=frozenset(delete))


def _held_instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def holds(block: BusyBlock, data: Mapping[str, Any]) -> bool:
    """True when Coconut's resource `data` already says what `block` says.

    Compared by meaning, not text: Coconut may write the same instant differently
    (`.000Z`, `+00:00`).
    """
    attributes = data.get("attributes")
    if data.get("type") != RESOURCE_TYPE or data.get("id") != block.external_id:
        return False
    if not isinstance(attributes, Mapping):
        return False
    return (
        set(attributes) == {"title", "start", "end", "all_day", "show_as"}
        and attributes["title"] == BUSY_TITLE
        and attributes["all_day"] is block.all_day
        and attributes["show_as"] == block.show_as
        and _held_instant(attributes["start"]) == block.start
        and _held_instant(attributes["end"]) == block.end
    )


def _ended_by(data: Mapping[str, Any], moment: datetime) -> bool:
    attributes = data.get("attributes")
    end = _held_instant(attributes.get("end")) if isinstance(attributes, Mapping) else None
    return end is not None and end <= moment


def plan_full_resync(
    blocks: Iterable[BusyBlock],
    held: Mapping[str, Mapping[str, Any]],
    *,
    window_start: datetime | None = None,
) -> tuple[list[BusyBlock], list[str]]:
    """What to PUT and what to DELETE so Coconut holds exactly `blocks` (after a delta 410).

    `blocks` is everything a fresh delta round found (the `put` of its `net_changes`); `held` is
    what Coconut lists for the staff member (external id -> resource). Blocks Coconut already
    holds unchanged are not sent again. Only the service's own external ids are deleted: other
    external events are none of its business. With `window_start`, held blocks that ended by then
    are kept, since a new delta round does not reach back there (past changes are ignored).
    Deletions come in external-id order, so a plan is reproducible.
    """
    wanted = {block.external_id: block for block in blocks}
    to_put = [
        block
        for external_id, block in wanted.items()
        if external_id not in held or not holds(block, held[external_id])
    ]
    to_delete = sorted(
        external_id
        for external_id, data in held.items()
        if external_id not in wanted
        and is_service_external_id(external_id)
        and not (window_start is not None and _ended_by(data, window_start))
    )
    return to_put, to_delete
