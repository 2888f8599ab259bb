"""Planning the Graph writes for one staff calendar (pure); `test_calendar_writer.py` applies
them to a mailbox."""

from __future__ import annotations

import uuid

import pytest

from sync.export.planning import (
    CreateEvent,
    EventLink,
    ForgetLink,
    RemoveEvent,
    RemoveUnconfirmedEvent,
    UpdateEvent,
    plan_calendar_changes,
    plan_drift_repairs,
    retire,
    transaction_id,
)
from sync.export.rendering import EventDraft, GraphDateTime

STAFF = "U-1"
KEY = "appointment:A-1"


def draft(subject: str = "Opening an account") -> EventDraft:
    zone = "Pacific Standard Time"
    return EventDraft(
        subject=subject,
        body="Notes: bring ID",
        start=GraphDateTime(date_time="2026-12-01T11:00:00", time_zone=zone),
        end=GraphDateTime(date_time="2026-12-01T11:30:00", time_zone=zone),
        location="",
    )


def linked(key: str = KEY, content: EventDraft | None = None, **fields: object) -> EventLink:
    written = content or draft()
    return EventLink.model_validate(
        {
            "item_key": key,
            "event_id": f"ev-{key}",
            "content_hash": written.content_hash(),
            "change_key": "ck-1",
            **fields,
        }
    )


def test_transaction_ids_are_deterministic_and_distinct() -> None:
    first = transaction_id(STAFF, KEY, 0)

    assert uuid.UUID(first).version == 5
    assert first == transaction_id(STAFF, KEY, 0)
    assert len({first, transaction_id("U-2", KEY, 0), transaction_id(STAFF, "x", 0)}) == 3
    assert first != transaction_id(STAFF, KEY, 1)


def test_a_new_item_is_created_with_generation_zero() -> None:
    assert plan_calendar_changes(STAFF, {KEY: draft()}, {}) == [
        CreateEvent(
            item_key=KEY,
            draft=draft(),
            transaction_id=transaction_id(STAFF, KEY, 0),
            generation=0,
            recover=False,
        )
    ]


def test_an_unchanged_draft_plans_nothing() -> None:
    assert plan_calendar_changes(STAFF, {KEY: draft()}, {KEY: linked()}) == []


def test_a_changed_draft_is_an_update_of_the_same_event() -> None:
    changed = draft("Closing an account")

    assert plan_calendar_changes(STAFF, {KEY: changed}, {KEY: linked()}) == [
        UpdateEvent(item_key=KEY, event_id=f"ev-{KEY}", draft=changed)
    ]


def test_an_unwanted_event_is_removed_and_its_link_kept() -> None:
    assert plan_calendar_changes(STAFF, {}, {KEY: linked()}) == [
        RemoveEvent(item_key=KEY, event_id=f"ev-{KEY}", forget_link=False)
    ]


def test_the_event_of_a_deleted_item_is_removed_for_good() -> None:
    assert plan_calendar_changes(STAFF, {}, {KEY: linked()}, finished={KEY}) == [
        RemoveEvent(item_key=KEY, event_id=f"ev-{KEY}", forget_link=True)
    ]


def test_a_pending_create_is_retried_with_the_same_transaction_id() -> None:
    pending = EventLink(item_key=KEY, generation=2, pending_create=True)

    (change,) = plan_calendar_changes(STAFF, {KEY: draft()}, {KEY: pending})

    assert change == CreateEvent(
        item_key=KEY,
        draft=draft(),
        transaction_id=transaction_id(STAFF, KEY, 2),
        generation=2,
        recover=True,
    )


def test_a_pending_create_no_longer_wanted_is_found_and_removed() -> None:
    pending = EventLink(item_key=KEY, pending_create=True)

    assert plan_calendar_changes(STAFF, {}, {KEY: pending}) == [
        RemoveUnconfirmedEvent(item_key=KEY, forget_link=False)
    ]


def test_retiring_a_link_moves_to_the_next_generation() -> None:
    assert retire(linked(generation=3)) == EventLink(item_key=KEY, generation=4)
    assert retire(EventLink(item_key=KEY, generation=1, pending_create=True)).generation == 2


def test_a_retired_link_wanted_again_is_created_with_its_generation() -> None:
    retired = EventLink(item_key=KEY, generation=4)

    (change,) = plan_calendar_changes(STAFF, {KEY: draft()}, {KEY: retired})

    assert isinstance(change, CreateEvent)
    assert (change.generation, change.recover) == (4, False)
    assert change.transaction_id == transaction_id(STAFF, KEY, 4)


def test_a_retired_link_is_kept_until_its_item_is_deleted() -> None:
    retired = EventLink(item_key=KEY, generation=3)

    assert plan_calendar_changes(STAFF, {}, {KEY: retired}) == []
    assert plan_calendar_changes(STAFF, {}, {KEY: retired}, finished={KEY}) == [
        ForgetLink(item_key=KEY)
    ]


def test_changes_come_in_a_fixed_order() -> None:
    links = {
        "appointment:b-remove": linked("appointment:b-remove"),
        "appointment:a-remove": linked("appointment:a-remove"),
        "appointment:c-update": linked("appointment:c-update"),
        "appointment:d-forget": EventLink(item_key="appointment:d-forget"),
        "appointment:e-pending": EventLink(item_key="appointment:e-pending", pending_create=True),
    }
    desired = {"appointment:0-create": draft(), "appointment:c-update": draft("changed")}
    finished = {"appointment:d-forget"}

    forward = plan_calendar_changes(STAFF, desired, links, finished)
    backward = plan_calendar_changes(
        STAFF, dict(reversed(desired.items())), dict(reversed(links.items())), finished
    )

    assert [(c.kind, c.item_key) for c in forward] == [
        ("forget", "appointment:d-forget"),
        ("remove_unconfirmed", "appointment:e-pending"),
        ("remove", "appointment:a-remove"),
        ("remove", "appointment:b-remove"),
        ("update", "appointment:c-update"),
        ("create", "appointment:0-create"),
    ]
    assert forward == backward


# --- Drift: events changed in Outlook. ---


def test_drift_nothing_changed() -> None:
    assert plan_drift_repairs(STAFF, {KEY: draft()}, {KEY: linked()}, {KEY: "ck-1"}) == []


def test_drift_edited_in_outlook_is_written_back() -> None:
    assert plan_drift_repairs(STAFF, {KEY: draft()}, {KEY: linked()}, {KEY: "ck-9"}) == [
        UpdateEvent(item_key=KEY, event_id=f"ev-{KEY}", draft=draft())
    ]


def test_drift_deleted_in_outlook_is_created_anew() -> None:
    (change,) = plan_drift_repairs(STAFF, {KEY: draft()}, {KEY: linked(generation=1)}, {KEY: None})

    assert isinstance(change, CreateEvent)
    assert change.generation == 2
    assert change.transaction_id == transaction_id(STAFF, KEY, 2)


@pytest.mark.parametrize(
    ("desired", "link"),
    [
        ({}, linked()),  # unwanted: the regular plan removes it
        ({KEY: draft()}, EventLink(item_key=KEY, pending_create=True)),
        ({KEY: draft()}, EventLink(item_key=KEY)),
    ],
)
def test_drift_only_for_wanted_confirmed_events(
    desired: dict[str, EventDraft], link: EventLink
) -> None:
    assert plan_drift_repairs(STAFF, desired, {KEY: link}, {KEY: None}) == []
    assert plan_drift_repairs(STAFF, desired, {KEY: link}, {KEY: "other"}) == []
