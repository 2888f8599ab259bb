"""Request bodies checked against the shipped Graph v1.0 metadata subset."""

from __future__ import annotations

from typing import Any

import pytest

from local.graph_emulator.schema import GraphSchema, InvalidBody

EXTENDED_PROPERTY_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name CoconutId"


@pytest.fixture(scope="module")
def schema() -> GraphSchema:
    return GraphSchema.load()


def rejection(schema: GraphSchema, type_name: str, body: object) -> InvalidBody:
    with pytest.raises(InvalidBody) as caught:
        schema.validate(type_name, body)
    return caught.value


def event_body() -> dict[str, Any]:
    """An event as the service creates it."""
    return {
        "subject": "Appointment",
        "body": {"contentType": "html", "content": "<p>Mortgage advice</p>"},
        "start": {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2026-03-02T10:00:00.0000000", "timeZone": "W. Europe Standard Time"},
        "location": {"displayName": "Branch 12", "address": {"city": "Zürich"}},
        "showAs": "busy",
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
        "transactionId": "coconut-42-1",
        "singleValueExtendedProperties": [{"id": EXTENDED_PROPERTY_ID, "value": "42"}],
    }


def test_load_parses_once(schema: GraphSchema) -> None:
    assert GraphSchema.load() is schema


def test_event_as_the_service_sends_it_is_accepted(schema: GraphSchema) -> None:
    schema.validate("event", event_body())
    schema.validate("microsoft.graph.event", event_body(), partial=True)


def test_unknown_property_is_rejected_with_its_name(schema: GraphSchema) -> None:
    body = event_body() | {"colour": "red"}

    error = rejection(schema, "event", body)

    assert str(error) == "The property 'colour' does not exist on type 'microsoft.graph.event'."
    assert error.path == "colour"


def test_property_of_a_base_type_is_accepted(schema: GraphSchema) -> None:
    # categories is declared on outlookItem, id on entity: event → outlookItem → entity.
    schema.validate("event", {"categories": ["Coconut"], "id": "AAMk="})


def test_navigation_property_outside_the_subset_is_rejected(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"attachments": []})

    assert "'attachments'" in str(error)


def test_enum_member_outside_the_type_is_rejected(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"showAs": "sometimes"})

    assert str(error).startswith(
        "Cannot convert the literal 'sometimes' to the expected type"
        " 'microsoft.graph.freeBusyStatus'."
    )
    assert error.path == "showAs"


def test_enum_members_match_case_insensitively(schema: GraphSchema) -> None:
    # Microsoft's recurrence examples write "Thursday" for the dayOfWeek member "thursday".
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["Thursday"]},
        "range": {"type": "numbered", "startDate": "2026-03-05", "numberOfOccurrences": 3},
    }
    schema.validate("event", {"recurrence": recurrence, "showAs": "Busy"})


def test_enum_value_that_may_be_personal_data_is_not_repeated(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"showAs": "jane.doe@example.com"})

    assert "jane" not in str(error)
    assert "'microsoft.graph.freeBusyStatus'" in str(error)
    assert "showAs" in str(error)


@pytest.mark.parametrize(
    ("body", "path", "expected_type"),
    [
        ({"subject": 42}, "subject", "Edm.String"),
        ({"isReminderOn": "yes"}, "isReminderOn", "Edm.Boolean"),
        ({"reminderMinutesBeforeStart": True}, "reminderMinutesBeforeStart", "Edm.Int32"),
        ({"reminderMinutesBeforeStart": 1.5}, "reminderMinutesBeforeStart", "Edm.Int32"),
        ({"reminderMinutesBeforeStart": 2**31}, "reminderMinutesBeforeStart", "Edm.Int32"),
        ({"originalStart": "2026-03-02T09:00:00"}, "originalStart", "Edm.DateTimeOffset"),
        ({"originalStart": "2026-02-30T09:00:00Z"}, "originalStart", "Edm.DateTimeOffset"),
        (
            {"location": {"coordinates": {"latitude": "47.3"}}},
            "location.coordinates.latitude",
            "Edm.Double",
        ),
    ],
)
def test_value_of_the_wrong_edm_type_is_rejected(
    schema: GraphSchema, body: dict[str, Any], path: str, expected_type: str
) -> None:
    error = rejection(schema, "event", body)

    assert error.path == path
    assert f"'{expected_type}'" in str(error)
    assert f"'{path}'" in str(error)


def test_nested_type_error_names_the_path(schema: GraphSchema) -> None:
    body = event_body()
    body["start"] = {"dateTime": 20260302, "timeZone": "UTC"}

    error = rejection(schema, "event", body)

    assert error.path == "start.dateTime"
    assert "'start.dateTime'" in str(error)
    assert "'Edm.String'" in str(error)


def test_unknown_nested_property_names_type_and_path(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"start": {"dateTime": "2026-03-02T09:00:00", "zone": "x"}})

    assert "The property 'zone' does not exist on type 'microsoft.graph.dateTimeTimeZone'." in str(
        error
    )
    assert error.path == "start.zone"


def test_string_value_is_never_echoed_in_type_errors(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"originalStart": "Jane Doe +41 79 123 45 67"})

    assert "Jane" not in str(error)
    assert "79" not in str(error)


def test_object_where_a_string_is_expected_is_rejected(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"subject": {"text": "x"}})

    assert "'StartObject'" in str(error)
    assert error.path == "subject"


def test_complex_value_must_be_an_object(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"start": "2026-03-02T09:00:00Z"})

    assert error.path == "start"
    assert "A 'StartObject' node was expected." in str(error)


def test_collection_value_must_be_an_array_of_its_type(schema: GraphSchema) -> None:
    assert rejection(schema, "event", {"categories": "Coconut"}).path == "categories"
    assert rejection(schema, "event", {"categories": ["a", 1]}).path == "categories[1]"


def test_extended_property_deep_insert_is_accepted(schema: GraphSchema) -> None:
    schema.validate(
        "event",
        {
            "singleValueExtendedProperties": [{"id": EXTENDED_PROPERTY_ID, "value": "42"}],
            "multiValueExtendedProperties": [
                {
                    "id": "StringArray {66f5a359-4659-4830-9070-00047ec6ac6e} Name Tags",
                    "value": ["a", "b"],
                }
            ],
        },
    )


def test_extended_property_deep_insert_is_validated_as_its_entity_type(
    schema: GraphSchema,
) -> None:
    error = rejection(
        schema, "event", {"singleValueExtendedProperties": [{"id": EXTENDED_PROPERTY_ID, "x": 1}]}
    )

    assert "does not exist on type 'microsoft.graph.singleValueLegacyExtendedProperty'" in str(
        error
    )
    assert error.path == "singleValueExtendedProperties[0].x"


def test_annotations_are_accepted(schema: GraphSchema) -> None:
    schema.validate(
        "event",
        {
            "@odata.type": "#microsoft.graph.event",
            "@odata.etag": 'W/"DwAAABYAAAA="',
            "subject@odata.type": "#String",
            "start": {"@odata.type": "microsoft.graph.dateTimeTimeZone", "dateTime": "x"},
        },
    )


def test_odata_type_selects_a_derived_complex_type(schema: GraphSchema) -> None:
    organizer = {
        "@odata.type": "#microsoft.graph.attendee",
        "type": "required",  # declared on attendee, not on recipient
        "emailAddress": {"address": "organizer@example.com"},
    }
    schema.validate("event", {"organizer": organizer})

    without_type = {k: v for k, v in organizer.items() if k != "@odata.type"}
    assert rejection(schema, "event", {"organizer": without_type}).path == "organizer.type"


def test_odata_type_outside_the_declared_hierarchy_is_rejected(schema: GraphSchema) -> None:
    error = rejection(schema, "event", {"organizer": {"@odata.type": "#microsoft.graph.location"}})

    assert error.path == "organizer.@odata.type"


def test_null_is_accepted_only_where_nullable(schema: GraphSchema) -> None:
    schema.validate("event", {"subject": None, "location": None}, partial=True)

    error = rejection(schema, "event", {"start": {"dateTime": None, "timeZone": "UTC"}})

    assert error.path == "start.dateTime"
    assert "does not allow null values" in str(error)


def test_body_must_be_a_json_object(schema: GraphSchema) -> None:
    error = rejection(schema, "event", [event_body()])

    assert "A 'StartObject' node was expected." in str(error)


def test_edm_formats_of_other_types(schema: GraphSchema) -> None:
    schema.validate(
        "mailboxSettings",
        {"workingHours": {"startTime": "08:00:00.0000000", "endTime": "17:30:00"}},
    )
    assert rejection(schema, "mailboxSettings", {"workingHours": {"endTime": "24:00:00"}}).path == (
        "workingHours.endTime"
    )
    schema.validate(
        "user", {"assignedLicenses": [{"skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900"}]}
    )
    assert rejection(schema, "user", {"assignedLicenses": [{"skuId": "6fd2c87f"}]}).path == (
        "assignedLicenses[0].skuId"
    )
    schema.validate("event", {"recurrence": {"range": {"startDate": "2026-03-02"}}})
    assert rejection(
        schema, "event", {"recurrence": {"range": {"startDate": "2026-3-2"}}}
    ).path == ("recurrence.range.startDate")


def test_user_has_structural_properties_only(schema: GraphSchema) -> None:
    schema.validate("user", {"displayName": "x", "mailboxSettings": {"timeZone": "UTC"}})

    assert rejection(schema, "user", {"manager": {}}).path == "manager"


def test_subscription_body(schema: GraphSchema) -> None:
    schema.validate(
        "subscription",
        {
            "changeType": "created,updated,deleted",
            "notificationUrl": "https://example.com/api/notifications",
            "lifecycleNotificationUrl": "https://example.com/api/lifecycle",
            "resource": "/users/0b2f/events",
            "expirationDateTime": "2026-03-09T09:00:00.0000000Z",
            "clientState": "secret",
        },
    )
    assert rejection(schema, "subscription", {"expirationDateTime": "soon"}).path == (
        "expirationDateTime"
    )


@pytest.mark.parametrize("body", [{"comment": "Moved"}, {"Comment": "Moved"}, {}])
def test_cancel_takes_its_comment_in_either_case(schema: GraphSchema, body: object) -> None:
    schema.validate_action("cancel", body)


def test_cancel_rejects_unknown_parameters_and_wrong_types(schema: GraphSchema) -> None:
    with pytest.raises(InvalidBody, match=r"The parameter 'reason' .* operation 'cancel'"):
        schema.validate_action("cancel", {"reason": "x"})
    with pytest.raises(InvalidBody) as caught:
        schema.validate_action("cancel", {"comment": 1})
    assert caught.value.path == "comment"


def test_unknown_type_or_action_is_a_programming_error(schema: GraphSchema) -> None:
    with pytest.raises(LookupError):
        schema.validate("message", {})
    with pytest.raises(LookupError):
        schema.validate_action("accept", {})


FLAGS_CSDL = """<?xml version="1.0"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="microsoft.graph" Alias="graph" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EnumType Name="changeKinds" IsFlags="true">
        <Member Name="created" Value="1" />
        <Member Name="updated" Value="2" />
      </EnumType>
      <EnumType Name="colour">
        <Member Name="red" Value="0" />
        <Member Name="blue" Value="1" />
      </EnumType>
      <ComplexType Name="watch">
        <Property Name="kinds" Type="graph.changeKinds" />
        <Property Name="colour" Type="graph.colour" />
      </ComplexType>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""


def test_flags_enum_takes_comma_separated_members() -> None:
    schema = GraphSchema.from_csdl(FLAGS_CSDL)

    schema.validate("watch", {"kinds": "created, updated"})
    with pytest.raises(InvalidBody):
        schema.validate("watch", {"kinds": "created,deleted"})
    with pytest.raises(InvalidBody):  # only flags enums combine members
        schema.validate("watch", {"colour": "red,blue"})
