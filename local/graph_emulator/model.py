"""What the emulator stores: directory users and the events of their mailboxes."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.graph_emulator.timezones import format_instant


@dataclass
class User:
    """A directory user with a mailbox; `/users/{x}` finds it by id or UPN, never by mail."""

    id: str
    user_principal_name: str
    mail: str | None
    display_name: str
    # Any string Graph may report: Windows or IANA name, or "Customized Time Zone".
    time_zone: str = "UTC"
    # False: the directory knows the user, but every mailbox endpoint answers 404 with
    # `mailbox_error` (MailboxNotEnabledForRESTAPI or ResourceNotFound).
    has_mailbox: bool = True
    mailbox_error: str = "MailboxNotEnabledForRESTAPI"
    # Outside the app's Exchange RBAC scope: every mailbox request answers 403.
    access_denied: bool = False

    def to_graph(self) -> dict[str, Any]:
        given, _, surname = self.display_name.partition(" ")
        return {
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": given or None,
            "jobTitle": None,
            "mail": self.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": surname or None,
            "userPrincipalName": self.user_principal_name,
            "id": self.id,
        }

    def to_control(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "mail": self.mail,
            "displayName": self.display_name,
            "timeZone": self.time_zone,
            "hasMailbox": self.has_mailbox,
            "mailboxError": self.mailbox_error,
            "accessDenied": self.access_denied,
        }


@dataclass
class ExtendedProperty:
    id: str  # as the client first wrote it
    value: Any  # str for single-value, list[str] for multi-value


@dataclass
class StoredEvent:
    """One calendar item. Occurrences are not stored: they are derived from their master."""

    id: str
    mailbox: str
    kind: str  # singleInstance | seriesMaster | exception | occurrence
    start: datetime  # aware, UTC
    end: datetime
    start_zone: str
    end_zone: str
    fields: dict[str, Any]  # the other client-writable properties, as last written
    body_type: str  # "text" or "html", as the client wrote it
    body_content: str
    single_properties: dict[str, ExtendedProperty]  # keyed by normalised property id
    multi_properties: dict[str, ExtendedProperty]
    transaction_id: str | None
    created: datetime
    modified: datetime
    change_key: str
    ical_uid: str
    series_master_id: str | None = None
    original_start: datetime | None = None
    cancelled_starts: set[datetime] = field(default_factory=set)
    folder: str = ""  # id of the calendar (or Deleted Items) holding it

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    @property
    def recurrence(self) -> dict[str, Any] | None:
        value = self.fields.get("recurrence")
        return value if isinstance(value, dict) else None


def new_event_id() -> str:
    # Shaped like Exchange's immutable ids (base64url, no padding), which stay stable here.
    return "AAMkAG" + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode().rstrip("=")


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(12)).decode()


def new_ical_uid() -> str:
    return "040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(24).upper()


_OCCURRENCE_PREFIX = "AAMkOC"


def occurrence_id(master_id: str, original_start: datetime) -> str:
    """Stable id of one occurrence: the master id plus the occurrence's original start."""
    stamp = original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = f"{master_id}|{stamp}".encode()
    return _OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_occurrence_id(event_id: str) -> tuple[str, datetime] | None:
    if not event_id.startswith(_OCCURRENCE_PREFIX):
        return None
    encoded = event_id[len(_OCCURRENCE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        master_id, _, stamp = raw.rpartition("|")
        start = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (ValueError, UnicodeDecodeError):
        return None
    return (master_id, start) if master_id else None


def new_user_id() -> str:
    return str(uuid.uuid4())


def instant_text(value: datetime | None) -> str | None:
    return None if value is None else format_instant(value)
