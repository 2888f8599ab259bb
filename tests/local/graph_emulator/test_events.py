"""Events through the real msgraph-sdk: create, idempotent retries, tags, reads, updates."""

from __future__ import annotations

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_type import EventType
from msgraph.generated.models.free_busy_status import FreeBusyStatus
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty,
)
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder
from msgraph.generated.users.item.events.item.event_item_request_builder import (
    EventItemRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import TAG_ID, event_body


def sdk_event(subject: str, tag: str | None = None, transaction_id: str | None = None) -> Event:
    return Event(
        subject=subject,
        body=ItemBody(content_type=BodyType.Text, content="Notes\nJohn Smith"),
        start=DateTimeTimeZone(
            date_time="2030-03-11T09:00:00", time_zone="W. Europe Standard Time"
        ),
        end=DateTimeTimeZone(date_time="2030-03-11T10:00:00", time_zone="W. Europe Standard Time"),
        show_as=FreeBusyStatus.Busy,
        transaction_id=transaction_id,
        single_value_extended_properties=(
            [SingleValueLegacyExtendedProperty(id=TAG_ID, value=tag)] if tag else None
        ),
    )


async def test_repeated_transaction_id_creates_one_event(
    graph: GraphServiceClient, emulator: GraphEmulator, jane: User
) -> None:
    first = await graph.users.by_user_id(jane.id).events.post(sdk_event("A", "c-1", "tx-1"))
    again = await graph.users.by_user_id(jane.id).events.post(sdk_event("A", "c-1", "tx-1"))

    assert first is not None
    assert again is not None
    assert again.id == first.id
    assert [ev["id"] for ev in emulator.events(jane.id)] == [first.id]


async def test_transaction_id_of_a_deleted_event_follows_the_configured_policy(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    url = f"/users/{jane.id}/events"
    original = (await http.post(url, json=event_body(transactionId="tx-9"))).json()
    assert (await http.delete(f"{url}/{original['id']}")).status_code == 204

    replayed = await http.post(url, json=event_body(transactionId="tx-9"))
    assert replayed.json()["id"] == original["id"]
    assert emulator.events(jane.id) == []

    emulator.state.settings.transaction_id_after_delete = "createNew"
    recreated = await http.post(url, json=event_body(transactionId="tx-9"))
    assert recreated.status_code == 201
    assert [ev["id"] for ev in emulator.events(jane.id)] == [recreated.json()["id"]]
    assert recreated.json()["id"] != original["id"]


async def test_extended_property_filter_and_expand(graph: GraphServiceClient, jane: User) -> None:
    events = graph.users.by_user_id(jane.id).events
    await events.post(sdk_event("Tagged", tag="c-42"))
    await events.post(sdk_event("Other tag", tag="c-43"))
    await events.post(sdk_event("Untagged"))
    query = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
        filter=f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG_ID}' and ep/value eq 'c-42')"
    )

    plain = await events.get(RequestConfiguration(query_parameters=query))
    query.expand = [f"singleValueExtendedProperties($filter=id eq '{TAG_ID}')"]
    expanded = await events.get(RequestConfiguration(query_parameters=query))

    assert plain is not None
    assert plain.value is not None
    assert [ev.subject for ev in plain.value] == ["Tagged"]
    assert plain.value[0].single_value_extended_properties is None
    assert expanded is not None
    assert expanded.value is not None
    props = expanded.value[0].single_value_extended_properties
    assert props is not None
    assert [(p.id, p.value) for p in props] == [(TAG_ID, "c-42")]


async def test_created_event_has_graph_shape(graph: GraphServiceClient, jane: User) -> None:
    created = await graph.users.by_user_id(jane.id).events.post(sdk_event("Shape"))

    assert created is not None
    assert created.start is not None
    assert created.body is not None
    assert created.start.time_zone == "UTC"
    assert created.start.date_time == "2030-03-11T08:00:00.0000000"  # 09:00 CET
    assert created.body.content_type == BodyType.Html
    assert "John Smith" in (created.body.content or "")
    assert created.type is not None
    assert created.type == EventType.SingleInstance
    assert created.show_as == FreeBusyStatus.Busy
    assert created.organizer is not None
    assert created.organizer.email_address is not None
    assert created.organizer.email_address.address == "Jane.Doe@bank.example"
    assert created.additional_data.get("@odata.etag") == f'W/"{created.change_key}"'


async def test_reads_honour_outlook_timezone_and_text_body(
    graph: GraphServiceClient, jane: User
) -> None:
    created = await graph.users.by_user_id(jane.id).events.post(sdk_event("Zones"))
    assert created is not None
    assert created.id is not None
    config = RequestConfiguration[
        EventItemRequestBuilder.EventItemRequestBuilderGetQueryParameters
    ]()
    config.headers.add("Prefer", 'outlook.timezone="Pacific Standard Time"')
    config.headers.add("Prefer", 'outlook.body-content-type="text"')

    read = await graph.users.by_user_id(jane.id).events.by_event_id(created.id).get(config)

    assert read is not None
    assert read.start is not None
    assert read.body is not None
    assert read.start.time_zone == "Pacific Standard Time"
    assert read.start.date_time == "2030-03-11T01:00:00.0000000"  # 08:00 UTC is 01:00 PDT
    assert read.body.content_type == BodyType.Text
    assert read.body.content == "Notes\nJohn Smith"


async def test_patch_changes_the_change_key_and_refuses_a_stale_etag(
    http: httpx.AsyncClient, jane: User
) -> None:
    created = (await http.post(f"/users/{jane.id}/events", json=event_body())).json()
    url = f"/users/{jane.id}/events/{created['id']}"

    patched = await http.patch(
        url, json={"subject": "Moved"}, headers={"If-Match": created["@odata.etag"]}
    )
    stale = await http.patch(
        url, json={"subject": "Again"}, headers={"If-Match": created["@odata.etag"]}
    )

    assert patched.status_code == 200
    assert patched.json()["changeKey"] != created["changeKey"]
    assert patched.json()["subject"] == "Moved"
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert (await http.get(url)).json()["subject"] == "Moved"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"subject": "x", "colour": "red"}, "colour"),
        ({"subject": "x", "showAs": "sometimes"}, "sometimes"),
    ],
)
async def test_invalid_body_is_rejected_before_anything_is_stored(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, body: dict[str, str], named: str
) -> None:
    response = await http.post(f"/users/{jane.id}/events", json=event_body(**body))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "RequestBodyRead"
    assert named in response.json()["error"]["message"]
    assert emulator.events(jane.id) == []


async def test_cancel_removes_the_event_for_the_organizer(
    graph: GraphServiceClient, emulator: GraphEmulator, jane: User
) -> None:
    created = await graph.users.by_user_id(jane.id).events.post(sdk_event("Cancelled"))
    assert created is not None
    assert created.id is not None
    from msgraph.generated.users.item.events.item.cancel.cancel_post_request_body import (
        CancelPostRequestBody,
    )

    await (
        graph.users.by_user_id(jane.id)
        .events.by_event_id(created.id)
        .cancel.post(CancelPostRequestBody(comment="Appointment cancelled"))
    )

    assert emulator.events(jane.id) == []


async def test_users_are_found_by_id_or_upn_and_by_mail_only_through_filter(
    graph: GraphServiceClient, jane: User
) -> None:
    by_upn = await graph.users.by_user_id("JANE.DOE@bank.onmicrosoft.com").get()
    with pytest.raises(ODataError) as by_mail:
        await graph.users.by_user_id("jane.doe@bank.example").get()
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="mail eq 'jane.doe@BANK.example'"
    )
    found = await graph.users.get(RequestConfiguration(query_parameters=query))

    assert by_upn is not None
    assert by_upn.id == jane.id
    assert by_mail.value.response_status_code == 404
    assert found is not None
    assert found.value is not None
    assert [user.id for user in found.value] == [jane.id]


async def test_mailbox_time_zone_is_the_users_windows_name(
    graph: GraphServiceClient, http: httpx.AsyncClient, jane: User
) -> None:
    settings = await graph.users.by_user_id(jane.id).mailbox_settings.get()
    zone = await http.get(f"/users/{jane.id}/mailboxSettings/timeZone")

    assert settings is not None
    assert settings.time_zone == "W. Europe Standard Time"
    assert zone.json()["value"] == "W. Europe Standard Time"
