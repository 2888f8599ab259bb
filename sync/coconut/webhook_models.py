"""The Coconut webhook payloads, validated exactly as contracts/coconut-webhooks.md describes.

`parse_delivery` turns a raw request body into one `Delivery`. Validation is strict JSON (a number
is not a string, `true` is not `1`), unknown fields are ignored for forward compatibility, and
every error message is built from field paths and fixed texts only: payloads carry a bank's
customer data, which must never reach a log line or an HTTP error body.

Decisions the contract leaves open:

- A field is required unless the contract says it "may be null or absent".
- `appointment.cancelled` whose resource says `status: "booked"` is rejected (400). The two
  halves contradict each other and either guess could be wrong (a booked slot silently removed,
  or a cancelled one kept in a calendar); Coconut's delivery log then shows the fault, and any
  later revision supersedes it anyway.
- A deletion only needs `id` and `attributes.revision`; a fuller resource sent with it is not
  validated further (nothing of it is used).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal, NoReturn, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

MAX_TEXT: Final = 10_000
MAX_NOTES: Final = 32_000
MAX_ATTENDEES: Final = 100
MAX_ANSWERS: Final = 50
MAX_STAFF: Final = 20
MAX_DURATION: Final = timedelta(days=366)
# Revisions are stored as Table Storage Int64 values.
MAX_REVISION: Final = 2**63 - 1

# Meeting methods 2 and 3 are virtual: no place to go to.
MEETING_AT_LOCATION: Final = 1
MEETING_PHONE: Final = 2
MEETING_VIDEO: Final = 3
MEETING_OFF_SITE: Final = 4
VIRTUAL_MEETING_METHODS: Final = frozenset({MEETING_PHONE, MEETING_VIDEO})

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Notes = Annotated[str, StringConstraints(max_length=MAX_NOTES)]
Revision = Annotated[int, Field(ge=1, le=MAX_REVISION)]


class _Payload(BaseModel):
    # Frozen, with tuples for lists: a validated payload cannot change after the fact.
    # Personal fields are left out of repr() so that logging a model cannot leak them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class StaffRef(_Payload):
    """A Coconut staff member as a resource names them (their work address, not a customer's)."""

    id: Identifier
    email: Annotated[Text, Field(repr=False)]
    first_name: Annotated[Text, Field(repr=False)]
    last_name: Annotated[Text, Field(repr=False)]


class Service(_Payload):
    id: Identifier
    name: Text


class Location(_Payload):
    id: Identifier
    name: Text
    address: Text


class Answer(_Payload):
    """An attendee's answer to one of the booking form's custom questions."""

    question: Text
    answer: Text


class Attendee(_Payload):
    """A customer attending an appointment: personal data throughout."""

    id: Identifier
    first_name: Annotated[Text, Field(repr=False)]
    last_name: Annotated[Text, Field(repr=False)]
    email: Annotated[Text | None, Field(repr=False)] = None
    cell_phone: Annotated[Text | None, Field(repr=False)] = None
    phone: Annotated[Text | None, Field(repr=False)] = None
    notes: Annotated[Notes | None, Field(repr=False)] = None
    answers: Annotated[tuple[Answer, ...] | None, Field(max_length=MAX_ANSWERS, repr=False)] = None


def _check_end(end: datetime, info: ValidationInfo) -> datetime:
    # `start` is declared before `end`, so it is already validated (absent if it failed).
    start = info.data.get("start")
    if isinstance(start, datetime):
        if end <= start:
            raise PydanticCustomError("end_not_after_start", "end must be after start")
        if end - start > MAX_DURATION:
            raise PydanticCustomError("duration_too_long", "duration must be at most 366 days")
    return end


class AppointmentAttributes(_Payload):
    revision: Revision
    status: Literal["booked", "cancelled"]
    start: AwareDatetime
    end: AwareDatetime
    timezone: Text
    meeting_method: Annotated[int, Field(ge=MEETING_AT_LOCATION, le=MEETING_OFF_SITE)]
    notes: Annotated[Notes | None, Field(repr=False)] = None
    service: Service
    location: Location | None = None
    staff: Annotated[tuple[StaffRef, ...], Field(max_length=MAX_STAFF)]
    attendees: Annotated[
        tuple[Attendee, ...] | None, Field(max_length=MAX_ATTENDEES, repr=False)
    ] = None

    _end_after_start = field_validator("end")(_check_end)

    @field_validator("staff")
    @classmethod
    def _booked_has_staff(
        cls, staff: tuple[StaffRef, ...], info: ValidationInfo
    ) -> tuple[StaffRef, ...]:
        if info.data.get("status") == "booked" and not staff:
            raise PydanticCustomError(
                "staff_required", "a booked appointment needs at least one staff member"
            )
        return staff


class Appointment(AppointmentAttributes):
    """A Coconut appointment: the resource's attributes plus its id."""

    id: Identifier

    @property
    def is_virtual(self) -> bool:
        return self.meeting_method in VIRTUAL_MEETING_METHODS


class UnavailabilityAttributes(_Payload):
    revision: Revision
    title: Text
    start: AwareDatetime
    end: AwareDatetime
    timezone: Text
    all_day: bool
    staff: StaffRef

    _end_after_start = field_validator("end")(_check_end)


class Unavailability(UnavailabilityAttributes):
    """A staff member's absence (vacation, training, ...): always exactly one staff member."""

    id: Identifier


class _RevisionOnly(_Payload):
    revision: Revision


class AppointmentResource(_Payload):
    type: Literal["appointments"]
    id: Identifier
    attributes: AppointmentAttributes


class UnavailabilityResource(_Payload):
    type: Literal["unavailabilities"]
    id: Identifier
    attributes: UnavailabilityAttributes


class _DeletedResource(_Payload):
    id: Identifier
    attributes: _RevisionOnly


class WebhookEnvelope(_Payload):
    """The outer envelope every delivery has; `data` is validated according to `type`."""

    id: Identifier
    type: Identifier
    created_at: AwareDatetime
    data: Any


class _AppointmentEnvelope(WebhookEnvelope):
    data: AppointmentResource


class _UnavailabilityEnvelope(WebhookEnvelope):
    data: UnavailabilityResource


class _DeletionEnvelope(WebhookEnvelope):
    data: _DeletedResource


APPOINTMENT_CHANGE_TYPES: Final = frozenset(
    {"appointment.created", "appointment.updated", "appointment.cancelled"}
)
UNAVAILABILITY_CHANGE_TYPES: Final = frozenset({"unavailability.created", "unavailability.updated"})
# The deliveries that announce a new item (usually its first delivery).
CREATION_TYPES: Final = frozenset({"appointment.created", "unavailability.created"})
APPOINTMENT_DELETED: Final = "appointment.deleted"
UNAVAILABILITY_DELETED: Final = "unavailability.deleted"
APPOINTMENT_CANCELLED: Final = "appointment.cancelled"


class _Delivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    delivery_id: str
    """The envelope id (equal to the `X-Coconut-Delivery` header): safe to log."""
    event_type: str


class AppointmentChange(_Delivery):
    """An appointment was created, updated or cancelled: the full resource at `revision`."""

    kind: Literal["appointment_change"] = "appointment_change"
    appointment: Appointment


class AppointmentDeleted(_Delivery):
    kind: Literal["appointment_deleted"] = "appointment_deleted"
    appointment_id: str
    revision: int


class UnavailabilityChange(_Delivery):
    kind: Literal["unavailability_change"] = "unavailability_change"
    unavailability: Unavailability


class UnavailabilityDeleted(_Delivery):
    kind: Literal["unavailability_deleted"] = "unavailability_deleted"
    unavailability_id: str
    revision: int


class IgnoredEvent(_Delivery):
    """An event type this service does not know: accepted and ignored (forward compatibility)."""

    kind: Literal["ignored"] = "ignored"


Delivery = (
    AppointmentChange
    | AppointmentDeleted
    | UnavailabilityChange
    | UnavailabilityDeleted
    | IgnoredEvent
)


class InvalidPayload(ValueError):
    """The body is not a valid webhook payload. The message names field paths, never values."""


# Error types whose pydantic message is a fixed text or quotes only the schema (limits, allowed
# literals), never the input. Anything else is reported by its type name alone, so that a future
# message template that quotes the input cannot leak personal data.
_SAFE_MESSAGE_TYPES: Final = frozenset(
    {
        "missing",
        "json_invalid",
        "string_type",
        "string_too_short",
        "string_too_long",
        "int_type",
        "int_parsing",
        "greater_than_equal",
        "less_than_equal",
        "bool_type",
        "too_short",
        "model_type",
        "model_attributes_type",
        "dict_type",
        "literal_error",
        "datetime_type",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "timezone_aware",
        "end_not_after_start",
        "duration_too_long",
        "staff_required",
    }
)


def _describe(error: ErrorDetails) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "body"
    kind = error["type"]
    if kind in ("list_type", "tuple_type"):
        # Lists are held as tuples; the payload's word for them is "array".
        message = "Input should be an array"
    elif kind == "too_long" and "max_length" in error.get("ctx", {}):
        message = f"Input should have at most {error['ctx']['max_length']} items"
    elif kind in _SAFE_MESSAGE_TYPES:
        message = error["msg"]
    else:
        message = f"invalid value ({kind})"
    return f"{path}: {message}"


def _error_message(exc: ValidationError) -> str:
    details = exc.errors(include_url=False, include_input=False)
    return "; ".join(_describe(error) for error in details)


def _reject_constant(name: str) -> NoReturn:
    # json.loads accepts NaN and Infinity, which are not JSON.
    raise ValueError("not JSON")


_Envelope = TypeVar("_Envelope", bound=WebhookEnvelope)


def _validate(model: type[_Envelope], body: bytes) -> _Envelope:
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        message = _error_message(exc)
    # Raised outside the handler: the ValidationError (and its inputs) must not ride along as
    # __context__ into a logged traceback.
    raise InvalidPayload(message)


def parse_delivery(body: bytes) -> Delivery:
    """Validate a webhook request body and say what it means.

    Raises `InvalidPayload` (an HTTP 400) for a body that is not JSON or breaks the contract.
    """
    try:
        json.loads(body, parse_constant=_reject_constant)
        is_json = True
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        is_json = False
    if not is_json:
        # Outside the handler: a JSONDecodeError carries the whole body.
        raise InvalidPayload("body is not valid JSON")

    envelope = _validate(WebhookEnvelope, body)
    event_type = envelope.type
    common = {"delivery_id": envelope.id, "event_type": event_type}

    if event_type in APPOINTMENT_CHANGE_TYPES:
        resource = _validate(_AppointmentEnvelope, body).data
        if event_type == APPOINTMENT_CANCELLED and resource.attributes.status != "cancelled":
            raise InvalidPayload(
                "data.attributes.status: Input should be 'cancelled' for appointment.cancelled"
            )
        appointment = Appointment(id=resource.id, **dict(resource.attributes))
        return AppointmentChange(**common, appointment=appointment)
    if event_type in UNAVAILABILITY_CHANGE_TYPES:
        resource_u = _validate(_UnavailabilityEnvelope, body).data
        unavailability = Unavailability(id=resource_u.id, **dict(resource_u.attributes))
        return UnavailabilityChange(**common, unavailability=unavailability)
    if event_type == APPOINTMENT_DELETED:
        deleted = _validate(_DeletionEnvelope, body).data
        return AppointmentDeleted(
            **common, appointment_id=deleted.id, revision=deleted.attributes.revision
        )
    if event_type == UNAVAILABILITY_DELETED:
        deleted = _validate(_DeletionEnvelope, body).data
        return UnavailabilityDeleted(
            **common, unavailability_id=deleted.id, revision=deleted.attributes.revision
        )
    return IgnoredEvent(**common)
