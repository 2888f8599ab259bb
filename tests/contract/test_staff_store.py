"""`StaffStore`: one record per staff member, written group by group, with ETag compare-and-swap.

The lease, the rerun request and the worker's outcome are separate writers of one record: each
write must touch only its own fields, and a swap against an old ETag must lose, or two workers
would hold one mailbox.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from sync.errors import ConcurrentUpdate
from sync.ports import StaffStore
from sync.staff_record import (
    GROUPS,
    Lease,
    Outcome,
    Roster,
    StaffChanges,
    StaffRecord,
)
from tests.contract.adapters import unique

MOMENT = datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=UTC)


def group_model(group: str) -> type[BaseModel]:
    """The model of one group of the record (`Roster` for "roster", ...)."""
    annotation = StaffChanges.model_fields[group].annotation
    (model,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    assert isinstance(model, type), group
    assert issubclass(model, BaseModel), group
    return model


def set_value(name: str, annotation: Any) -> Any:
    """A value for a field of this type other than any default the record uses."""
    options = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return options[-1]
    kinds = set(options) if isinstance(annotation, types.UnionType) else {annotation}
    if bool in kinds:
        return True
    if int in kinds:
        return 7
    if datetime in kinds:
        return MOMENT
    if str in kinds:
        return f"{name} as written"
    raise TypeError(f"no value for {name}: {annotation}")


def whole_record() -> StaffChanges:
    """Every group, every field set to something other than its default: made from the record's
    own models, so a field added to the record is held to the round trips below at once."""
    groups = {}
    for group in GROUPS:
        model = group_model(group)
        fields = {n: set_value(n, f.annotation) for n, f in model.model_fields.items()}
        groups[group] = model(**fields)
    return StaffChanges.model_validate(groups)


async def stored(store: StaffStore, staff_id: str) -> StaffRecord:
    record = await store.get(staff_id)
    assert record is not None
    return record


async def test_a_staff_member_never_written_has_no_record(staff_store: StaffStore) -> None:
    assert await staff_store.get(unique("U")) is None


def test_the_whole_record_sets_every_field_apart_from_its_default() -> None:
    changes = whole_record()
    for group in GROUPS:
        written = getattr(changes, group)
        assert written is not None, group
        assert written.model_fields_set == set(type(written).model_fields), group
        assert all(
            getattr(written, name) != field.default
            for name, field in type(written).model_fields.items()
        ), group


async def test_create_makes_the_record_it_returns(staff_store: StaffStore) -> None:
    """What `create` answers is what a read finds, every field and the ETag: the lease swaps
    against it."""
    staff_id = unique("U")

    created = await staff_store.create(staff_id, whole_record())

    assert await stored(staff_store, staff_id) == created
    assert created.staff_id == staff_id
    assert created.etag


async def test_a_second_create_loses(staff_store: StaffStore) -> None:
    """Two first runs for a new staff member: only one creates the record."""
    staff_id = unique("U")
    first = await staff_store.create(staff_id, StaffChanges(lease=Lease(owner="worker-1")))

    with pytest.raises(ConcurrentUpdate):
        await staff_store.create(staff_id, StaffChanges(lease=Lease(owner="worker-2")))

    assert await stored(staff_store, staff_id) == first


async def test_merge_against_the_current_etag_writes_and_gives_a_new_one(
    staff_store: StaffStore,
) -> None:
    staff_id = unique("U")
    created = await staff_store.create(staff_id, StaffChanges(lease=Lease(owner="worker-1")))

    etag = await staff_store.merge(
        staff_id, StaffChanges(lease=Lease(owner="worker-2")), if_match=created.etag
    )

    record = await stored(staff_store, staff_id)
    assert etag != created.etag
    assert record.etag == etag
    assert record.lease.owner == "worker-2"


async def test_merge_against_a_stale_etag_loses_and_writes_nothing(
    staff_store: StaffStore,
) -> None:
    staff_id = unique("U")
    created = await staff_store.create(staff_id, StaffChanges(lease=Lease(owner="worker-1")))
    await staff_store.merge(staff_id, StaffChanges(outcome=Outcome(status="Syncing")))
    current = await stored(staff_store, staff_id)

    with pytest.raises(ConcurrentUpdate):
        await staff_store.merge(
            staff_id, StaffChanges(lease=Lease(owner="worker-2")), if_match=created.etag
        )

    assert await stored(staff_store, staff_id) == current


async def test_a_conditional_merge_of_an_absent_record_loses(staff_store: StaffStore) -> None:
    """A swap against a record that is not there (any more) is a lost race, not a create."""
    staff_id = unique("U")

    with pytest.raises(ConcurrentUpdate):
        await staff_store.merge(staff_id, StaffChanges(lease=Lease(owner="w")), if_match='W/"1"')

    assert await staff_store.get(staff_id) is None


async def test_an_unconditional_merge_creates_an_absent_record(staff_store: StaffStore) -> None:
    """A rerun request or an ops action may come before any run wrote the record."""
    staff_id = unique("U")

    etag = await staff_store.merge(staff_id, StaffChanges(outcome=Outcome(status="Pending")))

    record = await stored(staff_store, staff_id)
    assert (record.etag, record.outcome.status) == (etag, "Pending")
    assert record.lease == Lease()


async def test_a_merge_writes_only_the_fields_set(staff_store: StaffStore) -> None:
    """Other groups, and the fields of the group left unset, keep their stored values."""
    staff_id = unique("U")
    before = await staff_store.create(staff_id, whole_record())

    await staff_store.merge(
        staff_id, StaffChanges(outcome=Outcome(status="Error", reason="another reason"))
    )

    after = await stored(staff_store, staff_id)
    assert after.outcome == before.outcome.model_copy(
        update={"status": "Error", "reason": "another reason"}
    )
    for group in GROUPS:
        if group != "outcome":
            assert getattr(after, group) == getattr(before, group), group


async def test_fields_cleared_read_back_as_their_defaults(staff_store: StaffStore) -> None:
    """None and "" both mean "none": every field cleared so reads back as the model's default,
    whatever the store keeps for it (Table Storage has no null); the others keep their values."""
    staff_id = unique("U")
    before = await staff_store.create(staff_id, whole_record())
    clearing = {
        group: {
            name: field.default
            for name, field in group_model(group).model_fields.items()
            if field.default is None or field.default == ""
        }
        for group in GROUPS
    }

    await staff_store.merge(
        staff_id,
        StaffChanges.model_validate(
            {group: group_model(group)(**fields) for group, fields in clearing.items()}
        ),
    )

    after = await stored(staff_store, staff_id)
    assert any(clearing.values())
    for group, fields in clearing.items():
        assert getattr(after, group) == getattr(before, group).model_copy(update=fields), group


@pytest.mark.parametrize("calendar_sync", [None, False, True])
async def test_calendar_sync_keeps_none_false_and_true_apart(
    staff_store: StaffStore, calendar_sync: bool | None
) -> None:
    """None (not on the roster yet) must not read as False (switched off in Coconut)."""
    staff_id = unique("U")
    await staff_store.create(staff_id, StaffChanges(roster=Roster(calendar_sync=not calendar_sync)))

    await staff_store.merge(staff_id, StaffChanges(roster=Roster(calendar_sync=calendar_sync)))

    assert (await stored(staff_store, staff_id)).roster.calendar_sync is calendar_sync


async def test_all_lists_every_record(staff_store: StaffStore) -> None:
    staff_ids = {unique("U") for _ in range(3)}
    for staff_id in staff_ids:
        await staff_store.create(staff_id, StaffChanges(roster=Roster(calendar_sync=True)))
    await staff_store.merge(min(staff_ids), StaffChanges(outcome=Outcome(status="Syncing")))

    listed = {r.staff_id: r for r in await staff_store.all() if r.staff_id in staff_ids}

    assert listed == {staff_id: await stored(staff_store, staff_id) for staff_id in staff_ids}


async def test_ids_with_characters_a_table_key_refuses_round_trip(
    staff_store: StaffStore,
) -> None:
    staff_id = unique("U/1#?%\\")

    await staff_store.create(staff_id, StaffChanges(roster=Roster(email="a@b.example")))

    assert (await stored(staff_store, staff_id)).staff_id == staff_id
    assert staff_id in {r.staff_id for r in await staff_store.all()}
