"""Which Exchange events become Coconut busy blocks, what those blocks hold, and full resyncs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sync.imports.busy_time import (
    BusyBlock,
    Removal,
    Skip,
    classify,
    external_id_for,
    holds,
    is_service_external_id,
    net_changes,
    plan_full_resync,
)

WINDOW_START = datetime(2026, 11, 30, tzinfo=UTC)
NO_OWN_EVENTS: frozenset[str] = frozenset()
# Shaped like real Graph immutable ids: long, with "/", "+" and "=".
SERIES_ID = "AAMkADk0ZTU1LWQ5YjYtNGI2Yy1hM2Q5LTNhMmI0ZDdmZWY5MABGAAAAAAB+/x8yUHJzQ6hC7x9p4Sk0BwD=="
PRIVATE_SUBJECT = "Dentist — Zyxwv"
PRIVATE_BODY = "Root canal, bring the Qwfpgj referral"
PRIVATE_ATTENDEE = "hidden.person@clinic.example"
PRIVATE_LOCATION = "Vbnmkl Clinic, 12 Harbour St"


def graph_time(moment: str, zone: str = "UTC") -> dict[str, str]:
    """Graph's dateTimeTimeZone, with its seven fractional digits."""
    return {"dateTime": f"{moment}.0000000", "timeZone": zone}


def graph_event(
    event_id: str = "AAMkAD-single/1+x=",
    *,
    start: str = "2026-12-02T15:00:00",
    end: str = "2026-12-02T16:00:00",
    zone: str = "UTC",
    show_as: str | None = "busy",
    kind: str = "singleInstance",
    all_day: bool = False,
    cancelled: bool = False,
    series_master_id: str | None = None,
) -> dict[str, Any]:
    """A calendarView delta item, content fields included (they must never reach Coconut)."""
    event: dict[str, Any] = {
        "id": event_id,
        "type": kind,
        "seriesMasterId": series_master_id,
        "subject": PRIVATE_SUBJECT,
        "body": {"contentType": "text", "content": PRIVATE_BODY},
        "bodyPreview": PRIVATE_BODY,
        "location": {"displayName": PRIVATE_LOCATION},
        "attendees": [
            {
                "type": "required",
                "emailAddress": {"name": "Hidden Person", "address": PRIVATE_ATTENDEE},
            }
        ],
        "isAllDay": all_day,
        "isCancelled": cancelled,
        "start": graph_time(start, zone),
        "end": graph_time(end, zone),
    }
    if show_as is not None:
        event["showAs"] = show_as
    return event


def removed(event_id: str) -> dict[str, Any]:
    return {"id": event_id, "@removed": {"reason": "deleted"}}


def decide(item: dict[str, Any], own: frozenset[str] = NO_OWN_EVENTS) -> Any:
    return classify(item, window_start=WINDOW_START, own_event_ids=own)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


DEFAULT_START = utc(2026, 12, 2, 15)


def block(
    event_id: str,
    start: datetime = DEFAULT_START,
    hours: int = 1,
    show_as: str = "busy",
    all_day: bool = False,
) -> BusyBlock:
    return BusyBlock(
        external_id=external_id_for(event_id),
        start=start,
        end=start + timedelta(hours=hours),
        all_day=all_day,
        show_as=show_as,
    )


# --- the filter -----------------------------------------------------------------------------------


def test_a_busy_event_becomes_a_block_with_its_utc_times() -> None:
    decision = decide(graph_event("E-1"))

    assert decision == BusyBlock(
        external_id=external_id_for("E-1"),
        start=utc(2026, 12, 2, 15),
        end=utc(2026, 12, 2, 16),
        all_day=False,
        show_as="busy",
    )


@pytest.mark.parametrize("show_as", ["busy", "tentative", "oof"])
def test_busy_tentative_and_out_of_office_are_imported_as_such(show_as: str) -> None:
    decision = decide(graph_event(show_as=show_as))

    assert isinstance(decision, BusyBlock)
    assert decision.show_as == show_as


@pytest.mark.parametrize("show_as", ["free", "workingElsewhere", "unknown", None])
def test_an_event_that_does_not_show_as_busy_removes_its_block(show_as: str | None) -> None:
    assert decide(graph_event("E-1", show_as=show_as)) == Removal(
        external_id=external_id_for("E-1"), reason="not_busy"
    )


@pytest.mark.parametrize(
    ("start", "end", "zone"),
    [
        # Pacific Standard Time is UTC-8 in December.
        ("2026-12-02T07:00:00", "2026-12-02T08:00:00", "Pacific Standard Time"),
        ("2026-12-02T16:00:00", "2026-12-02T17:00:00", "Europe/Berlin"),
        ("2026-12-02T15:00:00", "2026-12-02T16:00:00", "UTC"),
    ],
)
def test_windows_and_iana_zones_are_read_as_the_same_instant(
    start: str, end: str, zone: str
) -> None:
    decision = decide(graph_event(start=start, end=end, zone=zone))

    assert isinstance(decision, BusyBlock)
    assert (decision.start, decision.end) == (utc(2026, 12, 2, 15), utc(2026, 12, 2, 16))


def test_a_deleted_event_removes_the_block_it_was_imported_as() -> None:
    imported = decide(graph_event("E-1"))

    assert isinstance(imported, BusyBlock)
    assert decide(removed("E-1")) == Removal(external_id=imported.external_id, reason="deleted")


def test_a_series_master_is_skipped_because_its_occurrences_come_on_their_own() -> None:
    master = graph_event(SERIES_ID, kind="seriesMaster")

    assert decide(master) == Skip(reason="series_master")


def test_a_cancelled_event_removes_its_block() -> None:
    assert decide(graph_event("E-1", cancelled=True)) == Removal(
        external_id=external_id_for("E-1"), reason="cancelled"
    )


def test_an_event_without_an_end_removes_its_block() -> None:
    item = graph_event("E-1")
    del item["end"]

    assert decide(item) == Removal(external_id=external_id_for("E-1"), reason="no_duration")


def test_an_event_that_lasts_no_time_removes_its_block() -> None:
    item = graph_event("E-1", start="2026-12-02T15:00:00", end="2026-12-02T15:00:00")

    assert decide(item) == Removal(external_id=external_id_for("E-1"), reason="no_duration")


@pytest.mark.parametrize(
    "end",
    ["2026-11-29T12:00:00", "2026-11-30T00:00:00"],  # before, and exactly at, the window start
)
def test_changes_to_events_that_ended_before_the_window_are_ignored(end: str) -> None:
    item = graph_event(start="2026-11-29T09:00:00", end=end, show_as="free")

    assert decide(item) == Skip(reason="before_window")


def test_an_event_running_into_the_window_is_imported_whole() -> None:
    decision = decide(graph_event(start="2026-11-29T22:00:00", end="2026-11-30T02:00:00"))

    assert isinstance(decision, BusyBlock)
    assert decision.start == utc(2026, 11, 29, 22)


def test_an_event_the_service_wrote_itself_is_never_imported() -> None:
    own = frozenset({"EXPORTED-1"})

    assert decide(graph_event("EXPORTED-1"), own) == Skip(reason="own_event")
    assert decide(removed("EXPORTED-1"), own) == Skip(reason="own_event")
    assert isinstance(decide(graph_event("E-2"), own), BusyBlock)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda item: item.pop("id"),
        lambda item: item.update(id=""),
        lambda item: item.update(start={"dateTime": "next tuesday", "timeZone": "UTC"}),
        lambda item: item.update(start=graph_time("2026-12-02T15:00:00", "Mars/Olympus_Mons")),
        lambda item: item.update(end="2026-12-02T16:00:00Z"),
    ],
)
def test_an_unreadable_item_is_skipped(spoil: Any) -> None:
    item = graph_event()
    spoil(item)

    assert decide(item) == Skip(reason="malformed")


def test_a_naive_window_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        classify(graph_event(), window_start=datetime(2026, 11, 30), own_event_ids=NO_OWN_EVENTS)


# --- recurring series and all-day events ----------------------------------------------------------


def occurrence(n: int, **changes: Any) -> dict[str, Any]:
    day = 2 + n
    fields: dict[str, Any] = {
        "kind": "occurrence",
        "series_master_id": SERIES_ID,
        "start": f"2026-12-{day:02d}T09:00:00",
        "end": f"2026-12-{day:02d}T09:30:00",
    }
    fields.update(changes)
    return graph_event(f"{SERIES_ID}-occ{n}", **fields)


def test_each_occurrence_of_a_series_is_its_own_block() -> None:
    decisions = [decide(occurrence(n)) for n in range(3)]

    assert all(isinstance(d, BusyBlock) for d in decisions)
    assert len({d.external_id for d in decisions}) == 3
    assert [d.start.day for d in decisions] == [2, 3, 4]


def test_a_moved_occurrence_replaces_its_own_block_only() -> None:
    items = [
        decide(occurrence(0)),
        decide(occurrence(1)),
        # The second occurrence was moved in Outlook: it comes again as an exception.
        decide(
            occurrence(1, kind="exception", start="2026-12-03T14:00:00", end="2026-12-03T15:00:00")
        ),
    ]

    changes = net_changes(items)

    moved = changes.put[external_id_for(f"{SERIES_ID}-occ1")]
    assert (moved.start, moved.end) == (utc(2026, 12, 3, 14), utc(2026, 12, 3, 15))
    assert changes.put[external_id_for(f"{SERIES_ID}-occ0")].start == utc(2026, 12, 2, 9)
    assert changes.delete == frozenset()


def test_a_cancelled_occurrence_removes_only_its_own_block() -> None:
    changes = net_changes(
        [
            decide(occurrence(0)),
            decide(occurrence(1)),
            decide(occurrence(2)),
            decide(occurrence(1, kind="exception", cancelled=True)),
            decide(removed(f"{SERIES_ID}-occ2")),  # deleted from the series
        ]
    )

    assert set(changes.put) == {external_id_for(f"{SERIES_ID}-occ0")}
    assert changes.delete == {
        external_id_for(f"{SERIES_ID}-occ1"),
        external_id_for(f"{SERIES_ID}-occ2"),
    }


def test_an_all_day_event_keeps_its_own_midnights() -> None:
    # A Pacific all-day event on 3 December, as Graph shows it under Prefer: outlook.timezone=UTC.
    item = graph_event(start="2026-12-03T08:00:00", end="2026-12-04T08:00:00", all_day=True)

    decision = decide(item)

    assert isinstance(decision, BusyBlock)
    assert decision.all_day is True
    assert decision.to_coconut()["data"]["attributes"] == {
        "title": "Busy",
        "start": "2026-12-03T08:00:00Z",
        "end": "2026-12-04T08:00:00Z",
        "all_day": True,
        "show_as": "busy",
    }


# --- external ids --------------------------------------------------------------------------------


def test_the_external_id_is_stable_short_and_needs_no_escaping() -> None:
    long_id = "AAMkA/+=" * 120  # 960 characters

    external_id = external_id_for(long_id)

    assert external_id == external_id_for(long_id)
    assert len(external_id) <= 255
    assert re.fullmatch(r"[A-Za-z0-9._~-]+", external_id)
    assert is_service_external_id(external_id)


def test_the_external_id_is_the_same_on_every_sync_of_an_event() -> None:
    first = decide(graph_event("E-1", start="2026-12-02T15:00:00", end="2026-12-02T16:00:00"))
    edited = decide(graph_event("E-1", start="2026-12-05T10:00:00", end="2026-12-05T12:00:00"))

    assert isinstance(first, BusyBlock)
    assert isinstance(edited, BusyBlock)
    assert first.external_id == edited.external_id


@given(st.lists(st.text(min_size=1, max_size=300), min_size=2, max_size=20, unique=True))
def test_distinct_graph_ids_get_distinct_external_ids(event_ids: list[str]) -> None:
    external_ids = [external_id_for(event_id) for event_id in event_ids]

    assert len(set(external_ids)) == len(event_ids)
    assert all(len(external_id) <= 255 for external_id in external_ids)


def test_ids_differing_only_in_case_stay_apart() -> None:
    # Graph ids are case-sensitive base64.
    assert external_id_for("AAMkAbc=") != external_id_for("AAMkABC=")


# --- the PUT body ---------------------------------------------------------------------------------


def test_the_put_body_is_exactly_the_contract() -> None:
    decision = decide(graph_event("E-1", show_as="tentative"))

    assert isinstance(decision, BusyBlock)
    assert decision.to_coconut() == {
        "data": {
            "type": "external-events",
            "id": external_id_for("E-1"),
            "attributes": {
                "title": "Busy",
                "start": "2026-12-02T15:00:00Z",
                "end": "2026-12-02T16:00:00Z",
                "all_day": False,
                "show_as": "tentative",
            },
        }
    }


@given(
    # Marked, so a random subject cannot coincide with the body's own fixed text ("attributes").
    subject=st.text(min_size=4).map(lambda text: f"Zq{text}"),
    show_as=st.sampled_from(["busy", "tentative", "oof"]),
    all_day=st.booleans(),
)
def test_no_event_content_ever_reaches_the_put_body(
    subject: str, show_as: str, all_day: bool
) -> None:
    item = graph_event(show_as=show_as, all_day=all_day)
    item["subject"] = subject

    decision = decide(item)

    assert isinstance(decision, BusyBlock)
    sent = json.dumps(decision.to_coconut(), ensure_ascii=False)
    for private in (subject, PRIVATE_SUBJECT, PRIVATE_BODY, PRIVATE_ATTENDEE, PRIVATE_LOCATION):
        assert private not in sent
    assert "Zyxwv" not in sent
    attributes = decision.to_coconut()["data"]["attributes"]
    assert set(attributes) == {"title", "start", "end", "all_day", "show_as"}
    assert attributes["title"] == "Busy"


def test_sub_second_times_are_kept() -> None:
    start = datetime(2026, 12, 2, 15, 0, 0, 250000, tzinfo=UTC)

    body = block("E-1", start=start).to_coconut()

    assert body["data"]["attributes"]["start"] == "2026-12-02T15:00:00.250000Z"


@pytest.mark.parametrize(
    "fields",
    [
        {"start": datetime(2026, 12, 2, 15)},  # naive
        {"end": utc(2026, 12, 2, 15)},  # no duration
        {"external_id": "x" * 256},
        {"external_id": ""},
        {"show_as": "free"},
    ],
)
def test_a_block_that_coconut_would_refuse_cannot_be_made(fields: dict[str, Any]) -> None:
    valid: dict[str, Any] = {
        "external_id": "ex-1",
        "start": utc(2026, 12, 2, 15),
        "end": utc(2026, 12, 2, 16),
        "all_day": False,
        "show_as": "busy",
    }

    with pytest.raises(ValidationError):
        BusyBlock(**{**valid, **fields})


def test_a_block_holds_its_times_in_utc() -> None:
    toronto = datetime.fromisoformat("2026-12-02T10:00:00-05:00")

    made = BusyBlock(
        external_id="ex-1",
        start=toronto,
        end=toronto + timedelta(hours=1),
        all_day=False,
        show_as="busy",
    )

    assert made.start.utcoffset() == timedelta(0)
    assert made.to_coconut()["data"]["attributes"]["start"] == "2026-12-02T15:00:00Z"


# --- net changes over a delta round ---------------------------------------------------------------


def test_a_replayed_event_counts_once() -> None:
    changes = net_changes([decide(graph_event("E-1")), decide(graph_event("E-1"))])

    assert list(changes.put) == [external_id_for("E-1")]


def test_the_last_word_on_an_event_wins() -> None:
    deleted_then_restored = net_changes([decide(removed("E-1")), decide(graph_event("E-1"))])
    imported_then_freed = net_changes(
        [decide(graph_event("E-2")), decide(graph_event("E-2", show_as="free"))]
    )

    assert set(deleted_then_restored.put) == {external_id_for("E-1")}
    assert deleted_then_restored.delete == frozenset()
    assert imported_then_freed.put == {}
    assert imported_then_freed.delete == {external_id_for("E-2")}


# --- full resync ---------------------------------------------------------------------------------


def test_a_resync_into_an_empty_coconut_puts_everything() -> None:
    blocks = [block("E-1"), block("E-2")]

    assert plan_full_resync(blocks, {}) == (blocks, [])


def test_a_resync_leaves_unchanged_blocks_alone() -> None:
    blocks = [block("E-1"), block("E-2")]
    held = {b.external_id: b.coconut_data() for b in blocks}

    assert plan_full_resync(blocks, held) == ([], [])


def test_a_resync_reads_the_same_instant_written_another_way_as_unchanged() -> None:
    wanted = block("E-1")
    data = wanted.coconut_data()
    data["attributes"] = {
        **data["attributes"],
        "start": "2026-12-02T15:00:00.000Z",
        "end": "2026-12-02T16:00:00+00:00",
    }

    assert plan_full_resync([wanted], {wanted.external_id: data}) == ([], [])


@pytest.mark.parametrize(
    "stale",
    [
        {"start": "2026-12-02T14:00:00Z"},
        {"end": "2026-12-02T17:00:00Z"},
        {"show_as": "tentative"},
        {"all_day": True},
        {"title": "Dentist"},
        {"start": "not a time"},
    ],
)
def test_a_resync_replaces_a_block_that_differs(stale: dict[str, Any]) -> None:
    wanted = block("E-1")
    data = wanted.coconut_data()
    data["attributes"] = {**data["attributes"], **stale}

    assert plan_full_resync([wanted], {wanted.external_id: data}) == ([wanted], [])


def test_a_resync_deletes_blocks_whose_events_are_gone() -> None:
    kept, gone = block("E-1"), block("E-gone")
    held = {b.external_id: b.coconut_data() for b in (kept, gone)}

    assert plan_full_resync([kept], held) == ([], [gone.external_id])


def test_a_resync_leaves_external_events_it_did_not_write() -> None:
    foreign = {"type": "external-events", "id": "google-123", "attributes": {}}

    assert plan_full_resync([], {"google-123": foreign}) == ([], [])


def test_a_resync_leaves_blocks_that_ended_before_the_window() -> None:
    past = block("E-past", start=utc(2026, 11, 1, 9))
    future = block("E-future", start=utc(2026, 12, 9, 9))
    held = {b.external_id: b.coconut_data() for b in (past, future)}

    assert plan_full_resync([], held, window_start=WINDOW_START) == ([], [future.external_id])
    assert plan_full_resync([], held) == ([], sorted([past.external_id, future.external_id]))


def test_holds_compares_the_whole_resource() -> None:
    wanted = block("E-1")

    assert holds(wanted, wanted.coconut_data())
    assert not holds(wanted, {**wanted.coconut_data(), "id": "ex-other"})
    assert not holds(wanted, {**wanted.coconut_data(), "type": "users"})
    extra = wanted.coconut_data()
    extra["attributes"]["description"] = PRIVATE_BODY
    assert not holds(wanted, extra)


# --- property: a resync leaves Coconut holding exactly the blocks ---------------------------------

EVENT_IDS = [f"AAMkAD{n}/+=" for n in range(8)]

graph_items = st.one_of(
    st.builds(
        lambda event_id, day, hour, hours, show_as, kind, cancelled, all_day: graph_event(
            event_id,
            start=f"2026-{day}T{hour:02d}:00:00",
            end=(
                datetime.fromisoformat(f"2026-{day}T{hour:02d}:00:00") + timedelta(hours=hours)
            ).isoformat(),
            show_as=show_as,
            kind=kind,
            cancelled=cancelled,
            all_day=all_day,
        ),
        event_id=st.sampled_from(EVENT_IDS),
        day=st.sampled_from(["11-28", "11-29", "11-30", "12-01", "12-02"]),
        hour=st.integers(0, 23),
        hours=st.integers(0, 30),
        show_as=st.sampled_from(["busy", "tentative", "oof", "free", "workingElsewhere"]),
        kind=st.sampled_from(["singleInstance", "occurrence", "exception", "seriesMaster"]),
        cancelled=st.booleans(),
        all_day=st.booleans(),
    ),
    st.builds(removed, st.sampled_from(EVENT_IDS)),
)


def held_resource(external_id: str, day: int, show_as: str) -> dict[str, Any]:
    return {
        "type": "external-events",
        "id": external_id,
        "attributes": {
            "title": "Busy",
            "start": f"2026-12-{day:02d}T15:00:00Z",
            "end": f"2026-12-{day:02d}T16:00:00Z",
            "all_day": False,
            "show_as": show_as,
        },
    }


holdings = st.dictionaries(
    st.one_of(
        st.sampled_from(EVENT_IDS).map(external_id_for),  # maybe right, maybe stale
        st.sampled_from(["AAMkAD-gone-1", "AAMkAD-gone-2"]).map(external_id_for),
        st.sampled_from(["foreign-1", "foreign-2"]),  # not the service's to touch
    ),
    st.builds(lambda: None),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(graph_items, max_size=25),
    held_ids=holdings,
    data=st.data(),
)
def test_applying_a_resync_plan_leaves_coconut_holding_exactly_the_blocks(
    items: list[dict[str, Any]], held_ids: dict[str, None], data: st.DataObject
) -> None:
    blocks = list(
        net_changes(
            classify(item, window_start=WINDOW_START, own_event_ids=NO_OWN_EVENTS) for item in items
        ).put.values()
    )
    held: dict[str, dict[str, Any]] = {}
    for external_id in held_ids:
        # Sometimes exactly what is wanted, sometimes an outdated version.
        wanted = next((b for b in blocks if b.external_id == external_id), None)
        if wanted is not None and data.draw(st.booleans()):
            held[external_id] = wanted.coconut_data()
        else:
            day = data.draw(st.integers(1, 28))
            held[external_id] = held_resource(
                external_id, day, data.draw(st.sampled_from(["busy", "oof"]))
            )
    coconut = dict(held)

    to_put, to_delete = plan_full_resync(blocks, held)
    for put in to_put:
        coconut[put.external_id] = put.coconut_data()
    for external_id in to_delete:
        del coconut[external_id]

    ours = {key: value for key, value in coconut.items() if is_service_external_id(key)}
    assert ours == {b.external_id: b.coconut_data() for b in blocks}
    assert {k: v for k, v in coconut.items() if not is_service_external_id(k)} == {
        k: v for k, v in held.items() if not is_service_external_id(k)
    }
    # Nothing already right is sent again, and a second plan has nothing left to do.
    assert all(
        put.external_id not in held or not holds(put, held[put.external_id]) for put in to_put
    )
    assert plan_full_resync(blocks, coconut) == ([], [])
